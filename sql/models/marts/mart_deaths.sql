-- Current coroner cases with everything the death indicators and alerts need (formats.md §1
-- "Derived for each case"):
--
-- * Case definitions, from data: ref_case_definitions (formats.md §4) applied to the
--   underlying cause and the implicated substances, resolved through ref_substances on the
--   date of death. A case meets a definition when an enabled including row valid on the date of
--   death covers the cause's 3-character category and that row's substance conditions hold,
--   and no excluding row whose conditions hold covers it. Only substances_implicated counts;
--   substances_present never makes a death a misuse death. Open cases (no cause yet) meet none.
-- * Substance groups: the groups of the implicated substances (unknown names are
--   'unclassified'); groups_mentioned also counts substances present on toxicology, for the
--   early-warning alert series only. Both lists are sorted, so a re-run (on any engine) stores
--   the same arrays.
-- * Registration basis (the inquest date: registration follows the inquest) and occurrence
--   basis (the date of death).
-- * Linkage through person_id to mart_episodes: in treatment at death (an episode started on
--   or before the death and not exited before it), or left treatment within 365 days before
--   the death.
WITH cases AS (
    SELECT * FROM stg_deaths
),
-- One unnest over both lists (not a union of two unnests: on Ballista, a filter on `role`
-- pushed into such a union gives a plan the scheduler cannot read back).
named AS (
    SELECT coroner_area, case_id, date_of_death, role, unnest(names) AS raw_name
    FROM (
        SELECT coroner_area, case_id, date_of_death, 'implicated' AS role,
               substances_implicated AS names
        FROM cases
        UNION ALL
        SELECT coroner_area, case_id, date_of_death, 'present' AS role,
               substances_present AS names
        FROM cases
    ) lists
),
resolved AS (
    SELECT n.coroner_area, n.case_id, n.role,
           coalesce(r.canonical_name, trim(n.raw_name)) AS substance,
           coalesce(r."group", 'unclassified') AS substance_group,
           r.controlled_class, r.icd10_t_code
    FROM named n
    LEFT JOIN ref_substances r
      ON lower(regexp_replace(n.raw_name, '\s', '', 'g')) = lower(regexp_replace(r.name, '\s', '', 'g'))
     AND n.date_of_death >= r.valid_from
     AND (r.valid_to IS NULL OR n.date_of_death <= r.valid_to)
),
implicated AS (
    SELECT coroner_area, case_id,
           bool_or(controlled_class IS NOT NULL) AS any_controlled,
           array_agg(DISTINCT icd10_t_code) FILTER (WHERE icd10_t_code IS NOT NULL) AS t_codes,
           array_agg(DISTINCT lower(regexp_replace(substance, '\s', '', 'g')))
               FILTER (WHERE controlled_class IS NOT NULL) AS controlled_keys,
           array_sort(array_agg(DISTINCT substance_group)) AS substance_groups
    FROM resolved
    WHERE role = 'implicated'
    GROUP BY coroner_area, case_id
),
mentioned AS (
    SELECT coroner_area, case_id, array_sort(array_agg(DISTINCT substance_group)) AS groups_mentioned
    FROM resolved
    GROUP BY coroner_area, case_id
),
rules AS (
    SELECT row_number() OVER (ORDER BY definition, icd10_from, icd10_to, excluded, valid_from) AS rule_id,
           definition, icd10_from, icd10_to, requires_controlled_substance, requires_t_codes,
           excluded, excluded_if_only_substances, valid_from, valid_to
    FROM ref_case_definitions
    WHERE enabled
),
only_keys AS (
    SELECT rule_id, array_agg(lower(regexp_replace(k, '\s', '', 'g'))) AS keys
    FROM (SELECT rule_id, unnest(excluded_if_only_substances) AS k FROM rules)
    GROUP BY rule_id
),
facts AS (
    SELECT c.coroner_area, c.case_id, c.date_of_death,
           substr(c.underlying_cause_icd10, 1, 3) AS category,
           coalesce(i.any_controlled, false) AS any_controlled,
           i.t_codes, i.controlled_keys
    FROM cases c
    LEFT JOIN implicated i ON i.coroner_area = c.coroner_area AND i.case_id = c.case_id
    WHERE c.underlying_cause_icd10 IS NOT NULL
),
hits AS (
    SELECT f.coroner_area, f.case_id, r.definition,
           bool_or(NOT r.excluded) AS included,
           bool_or(r.excluded) AS excluded
    FROM facts f
    JOIN rules r
      ON f.category >= r.icd10_from AND f.category <= r.icd10_to
     AND f.date_of_death >= r.valid_from
     AND (r.valid_to IS NULL OR f.date_of_death <= r.valid_to)
    LEFT JOIN only_keys o ON o.rule_id = r.rule_id
    WHERE (NOT r.requires_controlled_substance OR f.any_controlled)
      AND (coalesce(cardinality(r.requires_t_codes), 0) = 0
           OR coalesce(array_has_any(f.t_codes, r.requires_t_codes), false))
      AND (o.keys IS NULL
           OR (coalesce(cardinality(f.controlled_keys), 0) > 0
               AND cardinality(array_except(f.controlled_keys, o.keys)) = 0))
    GROUP BY f.coroner_area, f.case_id, r.definition
),
flags AS (
    SELECT coroner_area, case_id,
           bool_or(definition = 'ons_drug_poisoning' AND included AND NOT excluded) AS ons_drug_poisoning,
           bool_or(definition = 'ons_drug_misuse' AND included AND NOT excluded) AS ons_drug_misuse,
           bool_or(definition = 'emcdda_selection_b' AND included AND NOT excluded) AS emcdda_selection_b
    FROM hits
    GROUP BY coroner_area, case_id
),
linked AS (
    SELECT c.coroner_area, c.case_id,
           bool_or(e.exit_date IS NULL OR e.exit_date >= c.date_of_death) AS in_treatment_at_death,
           min(CASE WHEN e.exit_date < c.date_of_death
                    THEN CAST(c.date_of_death AS INT) - CAST(e.exit_date AS INT) END) AS days_since_treatment_exit
    FROM cases c
    JOIN mart_episodes e
      ON e.person_id = c.person_id AND e.episode_start <= c.date_of_death
    WHERE c.person_id IS NOT NULL
    GROUP BY c.coroner_area, c.case_id
)
SELECT c.coroner_area, c.case_id, c.submitter, c.revision, c.person_id,
       c.residence_area AS partnership_code, c.sex, c.age, c.age_band,
       c.date_of_death, c.date_of_inquest,
       CAST(date_part('year', c.date_of_inquest) AS INT) AS registration_year,
       CAST(date_part('year', c.date_of_death) AS INT) AS occurrence_year,
       c.registration_delay_days,
       c.date_of_inquest IS NULL AS still_open,
       c.underlying_cause_icd10, c.conclusion,
       coalesce(f.ons_drug_poisoning, false) AS ons_drug_poisoning,
       coalesce(f.ons_drug_misuse, false) AS ons_drug_misuse,
       coalesce(f.emcdda_selection_b, false) AS emcdda_selection_b,
       i.substance_groups,
       m.groups_mentioned,
       coalesce(array_has_any(i.substance_groups, make_array('heroin_morphine', 'methadone', 'buprenorphine', 'other_opioids', 'fentanyl_analogues', 'nitazenes')), false) AS grp_opioids,
       coalesce(array_has(i.substance_groups, 'heroin_morphine'), false) AS grp_heroin_morphine,
       coalesce(array_has(i.substance_groups, 'cocaine'), false) AS grp_cocaine,
       coalesce(array_has_any(i.substance_groups, make_array('benzodiazepines', 'street_benzodiazepines')), false) AS grp_benzodiazepines,
       coalesce(array_has(i.substance_groups, 'gabapentinoids'), false) AS grp_gabapentinoids,
       coalesce(array_has(i.substance_groups, 'nitazenes'), false) AS grp_nitazenes,
       c.released_from_prison_days,
       coalesce(c.released_from_prison_days <= 28, false) AS within_28_days_of_release,
       c.person_id IS NOT NULL AS linkable,
       coalesce(l.in_treatment_at_death, false) AS in_treatment_at_death,
       l.days_since_treatment_exit,
       coalesce(l.in_treatment_at_death, false)
           OR coalesce(l.days_since_treatment_exit <= 365, false) AS linked_in_treatment,
       c.in_treatment AS coroner_in_treatment
FROM cases c
LEFT JOIN flags f ON f.coroner_area = c.coroner_area AND f.case_id = c.case_id
LEFT JOIN implicated i ON i.coroner_area = c.coroner_area AND i.case_id = c.case_id
LEFT JOIN mentioned m ON m.coroner_area = c.coroner_area AND m.case_id = c.case_id
LEFT JOIN linked l ON l.coroner_area = c.coroner_area AND l.case_id = c.case_id
