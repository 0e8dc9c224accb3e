-- One row per treatment episode (provider, client, episode start) with the dates that pick its
-- forms in mart_episodes: the newest start form, the latest review or exit form, the newest
-- exit form. Built once here because mart_episodes joins it several times (a CTE would be
-- recomputed at each use). Area, sex and band from any form keep an episode known only from
-- a post-exit form in its partnership.
SELECT provider_code, client_id, episode_start,
       max(person_id) AS person_id,
       max(partnership_code) AS any_partnership_code,
       max(sex) AS any_sex,
       max(age_band) AS any_age_band,
       max(top_date) AS last_top_date,
       max(CASE WHEN stage = 'exit' THEN top_date END) AS exit_date,
       max(CASE WHEN stage = 'start' THEN top_date END) AS start_date,
       max(CASE WHEN stage IN ('review', 'exit') THEN top_date END) AS latest_date,
       count(*) AS forms
FROM stg_top
GROUP BY provider_code, client_id, episode_start
