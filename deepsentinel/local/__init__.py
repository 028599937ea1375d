"""The local AWS: a moto server with documented patches (server), its request log, and the stand-ins that
run what AWS would run (stand_in: Batch, the SQS mapping, the database; smoke_model: a known-positive detector)."""
