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
-- The chosen forms (newest start; latest review or exit, the exit on a date with both; newest
-- exit) and their values come from mart_episode_keys, which finds them in one aggregation.
WITH ep AS (SELECT * FROM mart_episode_keys),
joined AS (
    SELECT provider_code, client_id, episode_start, person_id, last_top_date, exit_date,
           exit_reason, forms,
           coalesce(start_partnership_code, latest_partnership_code, any_partnership_code)
               AS partnership_code,
           coalesce(start_sex, latest_sex, any_sex) AS sex,
           coalesce(start_age_band, latest_age_band, any_age_band) AS age_band,
           start_date AS start_top_date,
           latest_date AS latest_top_date,
           opiate_days_start, opiate_days_latest, crack_days_start, crack_days_latest,
           injected_days_start, injected_days_latest, shared_start, shared_latest,
           housing_start, housing_latest
    FROM ep
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
