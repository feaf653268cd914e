"""kerasweep as a team service: PostgreSQL, an MLflow tracking server and a Ray head started by one command
(`manage`), and sweeps submitted, watched and cancelled from a laptop through Ray's Job API (`jobs`)."""
