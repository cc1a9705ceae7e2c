"""The networks and losses built on the backbones: DISTS / LPIPS (``perceptual``), the GAN discriminator and its
relativistic losses (``discriminator``), feature and Gram-texture losses (``feature_losses``, with Gatys et al.'s
``feature_normalisation``), the frozen-backbone base they share (``feature_metric``), PGD attacks (``pgd``) and the
IQA model (``iqa_model``). It stands on ``asym.core`` and ``asym.backbones``."""
