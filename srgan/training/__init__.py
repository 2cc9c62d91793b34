"""Training: SRResNet (L1) then SRGAN, its data, degradations, losses, checkpoints and plots.

``python -m srgan.training`` runs :func:`srgan.training.train.main` (no Prefect needed).
"""
