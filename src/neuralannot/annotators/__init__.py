"""Annotators: the neural annotator (train + annotate on the same set) and the optimization baselines."""
