"""Operations, beside the flow: each run's report (`run_report`), kept as run history in
Postgres (`history`) and published as metrics (`metrics`)."""
