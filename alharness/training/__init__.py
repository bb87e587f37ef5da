"""Training, evaluation and pool inference; device choice and seeding."""
