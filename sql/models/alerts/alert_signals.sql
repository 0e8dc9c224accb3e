-- Candidate drug-alert signals for human review (domain.md §6): every week of the 52 up to the
-- end of the run period in which a method alarms on a series of alert_series. One row per
-- (series, week, method); the review queue (alerts/) is keyed the same way, and a re-run
-- merges new evidence without touching the human status and notes. Signals are never
-- published.
--
-- Methods and settings (chosen for a low false-alarm rate on sparse weekly death counts:
-- about 4,200 series-weeks a year are tested, so each method runs at alpha = 0.001):
--   ears_c2: 7-week baseline with a 2-week guard band, alpha 0.001, baseline SD floored at
--            2 deaths (R surveillance minSigma) so that a series of near-zero weeks does not
--            alarm on a single death;
--   ears_c3: the same settings;
--   farrington_flexible: Noufaily settings (5 years, w = 3, 10 periods, 26 weeks excluded,
--            no alarm under 5 deaths in 4 weeks), alpha 0.001.
-- expected: the EARS C2/C3 baseline mean (weeks t-9 to t-3), or Farrington's expected count.
WITH base AS (
    SELECT a.*, a.week_start > p.period_end - INTERVAL '364' DAY AS is_recent
    FROM alert_series a CROSS JOIN run_params p
),
x AS (
    SELECT series_id, region_code, region_name, substance_group, week_start, week, deaths,
           is_recent,
           avg(CAST(deaths AS DOUBLE)) OVER (
               PARTITION BY series_id ORDER BY week_start
               ROWS BETWEEN 9 PRECEDING AND 3 PRECEDING) AS ears_baseline,
           ears_c2(deaths, 7, 2, 0.001) OVER (PARTITION BY series_id ORDER BY week_start) AS c2,
           ears_c3(deaths, 7, 2, 0.001) OVER (PARTITION BY series_id ORDER BY week_start) AS c3,
           -- Fitted only for the recent weeks (each fit uses the whole history before it).
           farrington_flexible(deaths, 0.001, is_recent)
               OVER (PARTITION BY series_id ORDER BY week_start) AS ff
    FROM base
),
recent AS (
    SELECT * FROM x WHERE is_recent
),
-- One row per method of each recent week, kept where that method alarms. (The windows are
-- computed once: a union of three filtered scans of `recent` would compute every window,
-- Farrington's fits included, three times.)
signals AS (
    SELECT r.series_id, r.region_code, r.region_name, r.substance_group, r.week_start, r.week,
           m.method, r.deaths AS observed,
           CASE m.method WHEN 'farrington_flexible' THEN r.ff['statistic']
                ELSE r.ears_baseline END AS expected,
           CASE m.method WHEN 'ears_c2' THEN r.c2['threshold']
                WHEN 'ears_c3' THEN r.c3['threshold'] ELSE r.ff['threshold'] END AS threshold,
           CASE m.method WHEN 'ears_c2' THEN r.c2['statistic']
                WHEN 'ears_c3' THEN r.c3['statistic'] ELSE r.ff['statistic'] END AS statistic
    FROM recent r
    CROSS JOIN (VALUES ('ears_c2'), ('ears_c3'), ('farrington_flexible')) AS m(method)
    WHERE CASE m.method WHEN 'ears_c2' THEN r.c2['alarm']
               WHEN 'ears_c3' THEN r.c3['alarm'] ELSE r.ff['alarm'] END
)
SELECT s.*, (SELECT period FROM run_params) AS period, (SELECT run_id FROM run_params) AS run_id
FROM signals s
