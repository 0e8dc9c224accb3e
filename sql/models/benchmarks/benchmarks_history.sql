-- Every run's benchmarks kept by run period, for trends across quarters: the rows of
-- `benchmarks`, each stamped with the run's period (run_params.period). Stored
-- overwrite_by_period on run_period, so a run replaces its own quarter and every other
-- quarter stays as the last committed run left it; a lookback run restates the quarters it
-- re-runs.
SELECT p.period AS run_period, b.*
FROM benchmarks b
CROSS JOIN run_params p
