-- Treatment episodes built from the TOP forms (formats.md §2): one row per provider, client and
-- episode start. The start TOP is compared with the latest review or exit TOP (domain.md §3.3).
--
-- Outcome rules (each NULL when the episode is not in that outcome's cohort):
--   abstinent_opiate_crack: used opiates or crack at start (days > 0); 0 days of both at the
--     latest review or exit.
--   reliable_improvement: used opiates at start; opiate days fell by at least 9
--     (the reliable-change threshold, an assumption: domain.md §3.3 says the NDTMS
--     thresholds were not verified, so it is this one constant).
--   stopped_injecting: injected at start; 0 injecting days at the latest.
--   stopped_sharing: shared equipment at start; not sharing at the latest.
--   housing_resolved: an acute housing problem at start; none at the latest.
--   successful_completion: exit reason completed (drug free or occasional user) and no new
--     episode for the same person (person_id, else the same provider and client) starting
--     within 6 months after the exit.
-- opiate_client: opiate days > 0 at start (the DOMES opiate / non-opiate split).
-- Each chosen form is found by joining back on its date from mart_episode_keys (a form is
-- unique per provider, client, date and stage), not by ranking: ranking sorts every form
-- twice, which at national scale (7 million forms) cost most of this model's time.
WITH ep AS (SELECT * FROM mart_episode_keys),
-- The newest start form.
st AS (
    SELECT f.* FROM stg_top f
    JOIN ep e USING (provider_code, client_id, episode_start)
    WHERE f.stage = 'start' AND f.top_date = e.start_date
),
-- The latest review or exit form; on a date with both, the exit.
latest AS (
    SELECT f.* FROM stg_top f
    JOIN ep e USING (provider_code, client_id, episode_start)
    WHERE f.top_date = e.latest_date
      AND f.stage = CASE WHEN e.exit_date = e.latest_date THEN 'exit' ELSE 'review' END
),
-- The newest exit form's reason.
ex AS (
    SELECT f.provider_code, f.client_id, f.episode_start, f.exit_reason FROM stg_top f
    JOIN ep e USING (provider_code, client_id, episode_start)
    WHERE f.stage = 'exit' AND f.top_date = e.exit_date
),
joined AS (
    SELECT e.provider_code, e.client_id, e.episode_start, e.person_id, e.last_top_date,
           e.exit_date, x.exit_reason, e.forms,
           coalesce(s.partnership_code, l.partnership_code, e.any_partnership_code) AS partnership_code,
           coalesce(s.sex, l.sex, e.any_sex) AS sex,
           coalesce(s.age_band, l.age_band, e.any_age_band) AS age_band,
           s.top_date AS start_top_date, l.top_date AS latest_top_date,
           s.opiate_days AS opiate_days_start, l.opiate_days AS opiate_days_latest,
           s.crack_days AS crack_days_start, l.crack_days AS crack_days_latest,
           s.injected_days AS injected_days_start, l.injected_days AS injected_days_latest,
           s.shared_equipment AS shared_start, l.shared_equipment AS shared_latest,
           s.acute_housing_problem AS housing_start, l.acute_housing_problem AS housing_latest
    FROM ep e
    LEFT JOIN st s ON s.provider_code = e.provider_code AND s.client_id = e.client_id
                  AND s.episode_start = e.episode_start
    LEFT JOIN latest l ON l.provider_code = e.provider_code AND l.client_id = e.client_id
                      AND l.episode_start = e.episode_start
    LEFT JOIN ex x ON x.provider_code = e.provider_code AND x.client_id = e.client_id
                  AND x.episode_start = e.episode_start
),
-- Another episode of the same person (person_id, else the same provider and client) starting
-- after this one's exit, within 6 months.
keyed AS (
    SELECT provider_code, client_id, episode_start, exit_date,
           coalesce(person_id, provider_code || '/' || client_id) AS person_key
    FROM ep
),
represented AS (
    SELECT a.provider_code, a.client_id, a.episode_start, true AS re_presented
    FROM keyed a
    JOIN keyed b
      ON a.person_key = b.person_key
     AND b.episode_start > a.exit_date
     AND b.episode_start <= a.exit_date + INTERVAL '6 months'
    WHERE a.exit_date IS NOT NULL
    GROUP BY a.provider_code, a.client_id, a.episode_start
)
SELECT j.provider_code, j.client_id, j.episode_start, j.person_id, j.partnership_code, j.sex,
       j.age_band, j.start_top_date, j.latest_top_date, j.last_top_date, j.exit_date,
       j.exit_reason, j.forms,
       coalesce(j.opiate_days_start, 0) > 0 AS opiate_client,
       CASE WHEN coalesce(j.opiate_days_start, 0) > 0 OR coalesce(j.crack_days_start, 0) > 0
                 THEN j.latest_top_date IS NOT NULL AND j.opiate_days_latest = 0
                      AND coalesce(j.crack_days_latest, 0) = 0 END AS abstinent_opiate_crack,
       CASE WHEN j.opiate_days_start > 0 AND j.opiate_days_latest IS NOT NULL
                 THEN j.opiate_days_start - j.opiate_days_latest >= 9 END AS reliable_improvement,
       CASE WHEN j.injected_days_start > 0
                 THEN j.latest_top_date IS NOT NULL AND j.injected_days_latest = 0 END AS stopped_injecting,
       CASE WHEN j.shared_start
                 THEN j.latest_top_date IS NOT NULL AND j.shared_latest = false END AS stopped_sharing,
       CASE WHEN j.housing_start
                 THEN j.latest_top_date IS NOT NULL AND j.housing_latest = false END AS housing_resolved,
       coalesce(j.exit_reason IN ('completed_drug_free', 'completed_occasional_user'), false)
           AND r.re_presented IS NULL AS successful_completion,
       coalesce(r.re_presented, false) AS re_presented_within_6_months
FROM joined j
LEFT JOIN represented r USING (provider_code, client_id, episode_start)
