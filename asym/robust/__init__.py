"""The robust-loss study (Uelwer et al.): adversarially robust classifiers (``classifier``) and the labelled images
they train on (``data``), the study's table (``table``), and Figure 1's top-1 error of classifiers on super-resolved
images (``classify``, over the labelled evaluation sets of ``labelled_images``)."""
