"""Commands beyond train/evaluate/models/profile register themselves here."""
