"""Training: the GAN trainer (gan, trainer, losses, augment), the method-training loop (fit), shared run helpers."""
