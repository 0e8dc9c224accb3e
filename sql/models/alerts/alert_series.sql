-- Weekly drug-death series for early warning (domain.md §6.4): deaths by ISO week of death
-- (occurrence basis), region of residence and substance group, for every complete week up to
-- the end of the run period, zero-filled. A death counts in a group when a substance of the
-- group is implicated or found on toxicology (groups_mentioned): alerts look for new harms
-- before inquests conclude, so open cases count too.
WITH groups AS (
    SELECT * FROM (VALUES
        ('heroin_morphine'), ('methadone'), ('fentanyl_analogues'), ('nitazenes'),
        ('cocaine'), ('benzodiazepines'), ('street_benzodiazepines'), ('gabapentinoids'),
        ('nps')
    ) AS g(substance_group)
),
regions AS (
    SELECT DISTINCT region_code, region_name FROM ref_partnerships
),
bounds AS (
    SELECT CAST(date_trunc('week', min(date_of_death)) AS DATE) AS first_week,
           -- the Monday after the last complete week (Monday-Sunday) ending on or before the
           -- period's end
           CAST(date_trunc('week', (SELECT period_end FROM run_params) + INTERVAL '1' DAY) AS DATE) AS end_week
    FROM mart_deaths
),
weeks AS (
    SELECT CAST(CAST(d AS INT) AS DATE) AS week_start
    FROM (SELECT unnest(range(CAST(CAST(first_week AS INT) AS BIGINT), CAST(CAST(end_week AS INT) AS BIGINT), 7)) AS d FROM bounds)
),
counts AS (
    SELECT CAST(date_trunc('week', d.date_of_death) AS DATE) AS week_start, p.region_code,
           g.substance_group, count(*) AS deaths
    FROM mart_deaths d
    JOIN ref_partnerships p ON p.code = d.partnership_code
    JOIN groups g ON array_has(d.groups_mentioned, g.substance_group)
    GROUP BY 1, 2, 3
)
SELECT r.region_code || '/' || g.substance_group AS series_id, r.region_code, r.region_name,
       g.substance_group, w.week_start, to_char(w.week_start, '%G-W%V') AS week,
       CAST(coalesce(c.deaths, 0) AS BIGINT) AS deaths
FROM regions r
CROSS JOIN groups g
CROSS JOIN weeks w
LEFT JOIN counts c
  ON c.week_start = w.week_start AND c.region_code = r.region_code
 AND c.substance_group = g.substance_group
WHERE w.week_start < (SELECT end_week FROM bounds)
