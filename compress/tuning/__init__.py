"""`compress tune`: search a recipe's prune level (allocated per layer from sensitivity) for the
most compression that meets every budget, running the real pipeline for each trial, and write
the winner back as a plain recipe (tuned.yaml) that `compress apply` reproduces."""
