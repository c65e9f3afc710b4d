"""The examples of the Faust agents guide, run on shoal with ``import shoal as faust``."""
