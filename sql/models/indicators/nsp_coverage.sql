-- NSP coverage per area with its WHO/UNODC/UNAIDS band (domain.md §4.2: low < 100,
-- medium 100-200, high > 200 syringe sets per PWID per year).
SELECT which, period, area_code, area_name, area_type, numerator AS syringe_sets,
       denominator AS estimated_pwid, value AS syringes_per_pwid,
       CASE WHEN value IS NULL THEN NULL
            WHEN value < 100 THEN 'low'
            WHEN value <= 200 THEN 'medium'
            ELSE 'high' END AS who_band
FROM ind_nsp
WHERE indicator_id = 'nsp_syringes_per_pwid'
