"""Commands that write files from trained models: attribute vectors, grids and GIFs, labels."""
