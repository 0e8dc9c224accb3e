-- Needle-and-syringe programme activity per partnership and return period (usually a calendar
-- month), summed over sites from the current returns. Syringe sets are complete sets only;
-- loose needles are never added to them (domain.md §4.1).
SELECT partnership_code, period_start,
       count(*) AS site_returns,
       count(DISTINCT site_code) AS sites,
       sum(transactions) AS transactions,
       sum(syringe_sets_issued) AS syringe_sets_issued,
       sum(needles_issued) AS needles_issued,
       sum(naloxone_kits_issued) AS naloxone_kits_issued,
       sum(bbv_tests_offered) AS bbv_tests_offered,
       sum(bbv_tests_done) AS bbv_tests_done,
       sum(referrals_to_treatment) AS referrals_to_treatment
FROM stg_nsp
GROUP BY partnership_code, period_start
