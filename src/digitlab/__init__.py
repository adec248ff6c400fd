"""digitlab: a from-scratch NumPy neural-network workbench for handwritten digits."""
