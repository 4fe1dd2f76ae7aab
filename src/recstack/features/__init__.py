"""Feature columns, hashing, vocabularies, numeric statistics, sequences and the FeaturePipeline."""
