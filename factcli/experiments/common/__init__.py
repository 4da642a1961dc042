"""What two experiment families share: optimizers, minibatches, a learner's trace, RFM settings."""
