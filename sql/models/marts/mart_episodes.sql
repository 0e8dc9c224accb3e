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
-- twice, which at national scale (7 million forms) cost most of this model's time. One join
-- brings each episode's chosen forms (newest start; latest review or exit, the exit on a date
-- with both; newest exit), flagged, and one aggregation puts them side by side. The join is a
-- LEFT join so that an episode with none of those forms (only a post-exit form) stays.
-- Measured at national scale (1.5 million episodes from 7.1 million forms): 8 s, against
-- 30 s for a join per chosen form and more for ranking.
WITH ep AS (SELECT * FROM mart_episode_keys),
flagged AS (
    SELECT e.provider_code, e.client_id, e.episode_start, e.person_id, e.last_top_date,
           e.exit_date, e.forms, e.any_partnership_code, e.any_sex, e.any_age_band,
           f.partnership_code, f.sex, f.age_band, f.top_date, f.opiate_days, f.crack_days,
           f.injected_days, f.shared_equipment, f.acute_housing_problem, f.exit_reason,
           f.stage = 'start' AND f.top_date = e.start_date AS is_start,
           f.top_date = e.latest_date
               AND f.stage = CASE WHEN e.exit_date = e.latest_date THEN 'exit' ELSE 'review' END
               AS is_latest,
           f.stage = 'exit' AND f.top_date = e.exit_date AS is_exit
    FROM ep e
    LEFT JOIN stg_top f
      ON f.provider_code = e.provider_code AND f.client_id = e.client_id
     AND f.episode_start = e.episode_start
     -- No condition on the forms alone here: one would be pushed into their scan, and the
     -- smaller size estimated for the filtered scan made the planner hash the forms (millions
     -- of rows) instead of the episodes. Forms on these dates that are not chosen carry no flag.
     AND (f.top_date = e.start_date OR f.top_date = e.latest_date OR f.top_date = e.exit_date)
),
joined AS (
    SELECT provider_code, client_id, episode_start,
           max(person_id) AS person_id,
           max(last_top_date) AS last_top_date,
           max(exit_date) AS exit_date,
           max(CASE WHEN is_exit THEN exit_reason END) AS exit_reason,
           max(forms) AS forms,
           coalesce(max(CASE WHEN is_start THEN partnership_code END),
                    max(CASE WHEN is_latest THEN partnership_code END),
                    max(any_partnership_code)) AS partnership_code,
           coalesce(max(CASE WHEN is_start THEN sex END),
                    max(CASE WHEN is_latest THEN sex END), max(any_sex)) AS sex,
           coalesce(max(CASE WHEN is_start THEN age_band END),
                    max(CASE WHEN is_latest THEN age_band END), max(any_age_band)) AS age_band,
           max(CASE WHEN is_start THEN top_date END) AS start_top_date,
           max(CASE WHEN is_latest THEN top_date END) AS latest_top_date,
           max(CASE WHEN is_start THEN opiate_days END) AS opiate_days_start,
           max(CASE WHEN is_latest THEN opiate_days END) AS opiate_days_latest,
           max(CASE WHEN is_start THEN crack_days END) AS crack_days_start,
           max(CASE WHEN is_latest THEN crack_days END) AS crack_days_latest,
           max(CASE WHEN is_start THEN injected_days END) AS injected_days_start,
           max(CASE WHEN is_latest THEN injected_days END) AS injected_days_latest,
           max(CASE WHEN is_start THEN shared_equipment END) AS shared_start,
           max(CASE WHEN is_latest THEN shared_equipment END) AS shared_latest,
           max(CASE WHEN is_start THEN acute_housing_problem END) AS housing_start,
           max(CASE WHEN is_latest THEN acute_housing_problem END) AS housing_latest
    FROM flagged
    GROUP BY provider_code, client_id, episode_start
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
