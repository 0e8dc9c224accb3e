-- The 3-year pooled drug-misuse death rate per partnership: deaths registered in 2023-2025
-- that meet the ONS drug-misuse definition, directly standardised to the 2013 European
-- Standard Population per 100,000 (persons; no rate from fewer than 10 deaths). Portable SQL:
-- the same text runs in drdsurv (DataFusion) and DuckDB.
WITH deaths AS (
    SELECT partnership_code, age_band, count(*) AS deaths
    FROM marts.mart_deaths
    WHERE ons_drug_misuse AND registration_year BETWEEN 2023 AND 2025
    GROUP BY partnership_code, age_band
),
pop AS (
    SELECT area_code, age_band, sum(population) AS population
    FROM marts.mart_population
    WHERE area_type = 'partnership' AND year BETWEEN 2023 AND 2025
    GROUP BY area_code, age_band
),
bands AS (
    SELECT pop.area_code, pop.age_band, pop.population, esp.weight,
           CAST(coalesce(deaths.deaths, 0) AS DOUBLE) AS deaths
    FROM pop
    JOIN reference.esp2013 esp ON esp.age_band = pop.age_band
    LEFT JOIN deaths ON deaths.partnership_code = pop.area_code AND deaths.age_band = pop.age_band
)
SELECT area_code,
       CAST(sum(deaths) AS BIGINT) AS deaths,
       CAST(sum(population) AS BIGINT) AS population,
       CASE WHEN sum(deaths) >= 10
            THEN 100000.0 * sum(weight * deaths / population) / sum(weight) END AS dsr_per_100k
FROM bands
GROUP BY area_code
ORDER BY area_code
