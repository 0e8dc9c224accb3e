-- Indicators 1-3: deaths related to drug poisoning and deaths from drug misuse, 3-year pooled
-- directly standardised rates per 100,000 (ESP2013, Dobson intervals: the dsr functions), for
-- persons and by sex; and drug-misuse crude rates per 100,000 by ESP2013 age band.
--
-- Window (architecture.md "Period windows"): the 3 complete registration years ending with
-- the last complete year at or before the run period's end (run_windows kind 'deaths'). Rows
-- come for the registration basis (year of the inquest) and the occurrence basis (year of
-- death; only cases with a cause can meet a definition, so recent years are provisional when
-- under 90% of their cases are registered).
--
-- Rules: a rate from fewer than 10 deaths is NULL with note 'too few events for a rate'
-- (the dsr functions return NULL); 10-19 deaths: 'unreliable: 10-19 events'.
-- Every area level comes from mart_areas (partnership, region, comparator group, England).
WITH w AS (
    SELECT * FROM run_windows WHERE kind = 'deaths'
),
defs AS (
    SELECT * FROM (VALUES
        ('drug_poisoning_dsr', 'Deaths related to drug poisoning', 'ons_drug_poisoning'),
        ('drug_misuse_dsr', 'Deaths from drug misuse', 'ons_drug_misuse')
    ) AS t(indicator_id, indicator_name, definition)
),
events AS (
    SELECT w.which, w.label AS period, 'registration' AS basis, d.*
    FROM mart_deaths d
    JOIN w ON d.registration_year BETWEEN w.first_year AND w.last_year
    UNION ALL
    SELECT w.which, w.label AS period, 'occurrence' AS basis, d.*
    FROM mart_deaths d
    JOIN w ON d.occurrence_year BETWEEN w.first_year AND w.last_year
    WHERE w.which IN ('current', 'previous')
),
-- Occurrence years with under 90% of their cases registered make the window provisional.
registered AS (
    SELECT w.which, bool_or(r.share < 0.9) AS provisional
    FROM (
        SELECT occurrence_year, avg(CASE WHEN still_open THEN 0.0 ELSE 1.0 END) AS share
        FROM mart_deaths GROUP BY occurrence_year
    ) r
    JOIN w ON r.occurrence_year BETWEEN w.first_year AND w.last_year
    GROUP BY w.which
),
facts AS (
    SELECT e.which, e.period, e.basis, defs.indicator_id, defs.indicator_name,
           e.partnership_code, e.sex, e.age_band
    FROM events e
    JOIN defs ON (defs.definition = 'ons_drug_poisoning' AND e.ons_drug_poisoning)
              OR (defs.definition = 'ons_drug_misuse' AND e.ons_drug_misuse)
),
-- Deaths per area, sex (persons, male, female) and band.
deaths AS (
    SELECT f.which, f.basis, f.indicator_id, a.area_code, 'persons' AS sex, f.age_band, count(*) AS deaths
    FROM facts f JOIN mart_areas a ON a.partnership_code = f.partnership_code
    GROUP BY f.which, f.basis, f.indicator_id, a.area_code, f.age_band
    UNION ALL
    SELECT f.which, f.basis, f.indicator_id, a.area_code, f.sex, f.age_band, count(*) AS deaths
    FROM facts f JOIN mart_areas a ON a.partnership_code = f.partnership_code
    WHERE f.sex IN ('male', 'female')
    GROUP BY f.which, f.basis, f.indicator_id, a.area_code, f.sex, f.age_band
),
-- Pooled population over the window's years, per area, sex and band.
pop AS (
    SELECT w.which, w.label AS period, p.area_code, 'persons' AS sex, p.age_band, sum(p.population) AS population
    FROM mart_population p JOIN w ON p.year BETWEEN w.first_year AND w.last_year
    GROUP BY w.which, w.label, p.area_code, p.age_band
    UNION ALL
    SELECT w.which, w.label AS period, p.area_code, p.sex, p.age_band, sum(p.population) AS population
    FROM mart_population p JOIN w ON p.year BETWEEN w.first_year AND w.last_year
    GROUP BY w.which, w.label, p.area_code, p.sex, p.age_band
),
grid AS (
    SELECT pop.which, pop.period, b.basis, defs.indicator_id, defs.indicator_name,
           pop.area_code, pop.sex, pop.age_band, pop.population,
           CAST(coalesce(d.deaths, 0) AS DOUBLE) AS deaths, esp.weight
    FROM pop
    CROSS JOIN defs
    CROSS JOIN (VALUES ('registration'), ('occurrence')) AS b(basis)
    JOIN ref_esp2013 esp ON esp.age_band = pop.age_band
    LEFT JOIN deaths d
      ON d.which = pop.which AND d.basis = b.basis AND d.indicator_id = defs.indicator_id
     AND d.area_code = pop.area_code AND d.sex = pop.sex AND d.age_band = pop.age_band
    -- History windows (trend charts) need only the headline: persons, registration basis.
    WHERE pop.which IN ('current', 'previous') OR (b.basis = 'registration' AND pop.sex = 'persons')
),
areas AS (
    SELECT DISTINCT area_code, area_name, area_type FROM mart_areas
),
dsr_rows AS (
    SELECT which, period, basis, indicator_id, indicator_name, area_code, sex,
           'all' AS age_band,
           sum(deaths) AS numerator, CAST(sum(population) AS DOUBLE) AS denominator,
           dsr(deaths, population, weight) AS value,
           dsr_lower(deaths, population, weight, 0.95) AS lower95,
           dsr_upper(deaths, population, weight, 0.95) AS upper95,
           dsr_lower(deaths, population, weight, 0.998) AS lower998,
           dsr_upper(deaths, population, weight, 0.998) AS upper998
    FROM grid
    GROUP BY which, period, basis, indicator_id, indicator_name, area_code, sex
),
-- Indicator 3, by age: drug-misuse crude rates per 100,000, persons, registration basis.
age_rows AS (
    SELECT which, period, basis, 'drug_misuse_rate_by_age' AS indicator_id,
           'Deaths from drug misuse by age band' AS indicator_name, area_code, sex, age_band,
           deaths AS numerator, CAST(population AS DOUBLE) AS denominator,
           CASE WHEN deaths >= 10 THEN deaths / population * 100000 END AS value,
           CASE WHEN deaths >= 10 THEN rate_lower(deaths, population, 0.95, 100000) END AS lower95,
           CASE WHEN deaths >= 10 THEN rate_upper(deaths, population, 0.95, 100000) END AS upper95,
           CASE WHEN deaths >= 10 THEN rate_lower(deaths, population, 0.998, 100000) END AS lower998,
           CASE WHEN deaths >= 10 THEN rate_upper(deaths, population, 0.998, 100000) END AS upper998
    FROM grid
    WHERE indicator_id = 'drug_misuse_dsr' AND sex = 'persons' AND basis = 'registration'
      AND population > 0 AND which IN ('current', 'previous')
),
all_rows AS (
    SELECT * FROM dsr_rows
    UNION ALL
    SELECT * FROM age_rows
)
SELECT r.which, r.indicator_id, r.indicator_name, r.period, r.basis,
       r.area_code, a.area_name, a.area_type, r.sex, r.age_band, 'all' AS substance_group,
       'per 100,000' AS unit, 'low_is_good' AS polarity,
       r.numerator, r.denominator, r.value, r.lower95, r.upper95, r.lower998, r.upper998,
       r.basis = 'occurrence' AND coalesce(reg.provisional, false) AS provisional,
       CASE WHEN r.denominator IS NULL OR r.denominator = 0 THEN 'no data'
            WHEN r.numerator < 10 THEN 'too few events for a rate'
            WHEN r.numerator < 20 THEN 'unreliable: 10-19 events'
            WHEN r.basis = 'occurrence' AND coalesce(reg.provisional, false) THEN 'provisional'
       END AS note
FROM all_rows r
JOIN areas a ON a.area_code = r.area_code
LEFT JOIN registered reg ON reg.which = r.which
