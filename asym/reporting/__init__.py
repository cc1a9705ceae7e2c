"""What results are shown as, whatever the domain: tables (``tables``: row names, Markdown cells, csv / json
records), charts (``figures``) and image grids with labels (``grids``). It stands on ``asym.core`` alone."""
