-- Population by area (every level of mart_areas), year, sex and ESP2013 band: the
-- denominators of every rate. Summed from the partnerships' populations, so a region's
-- population is exactly the sum of its partnerships'.
SELECT a.area_code, a.area_type, p.year, p.sex, p.age_band, sum(p.population) AS population
FROM ref_population p
JOIN mart_areas a ON a.partnership_code = p.code
GROUP BY a.area_code, a.area_type, p.year, p.sex, p.age_band
