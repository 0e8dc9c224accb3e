-- Every indicator row of the run's windows with its benchmarks (architecture.md "Published
-- indicator files"; methods.md §7-8):
--
-- * england_value, region_value (the partnership's region), comparator_value (its comparator
--   group), each for the same indicator and breakdown.
-- * comparison: the area's 95% interval against England's value (Fingertips method 1),
--   polarity-aware (better / similar / worse; higher / similar / lower without polarity);
--   comparison_2level: method 17 (best / better / similar / worse / worst);
--   region_comparison and comparator_comparison: method 1 against those values.
--   An area without an interval (a suppressed rate, a per-PWID figure) is 'not compared'.
-- * quintile among all partnerships (1 = lowest value, whatever the polarity) and
--   comparator_quintile within the comparator group (Fingertips quintiles, methods.md §8).
-- * funnel_significance: proportions against the partnerships' pooled proportion (methods.md
--   §7, Wilson); DSRs and crude rates against the pooled rate (Poisson: exact below 10
--   events, Byar from 10; DSRs below 10 events are not applicable).
-- * top_quartile_min / top_quartile_max / in_top_quartile: the range of the best 25% of the
--   comparator group (polarity decides "best"; domain.md §3.4), NULL without polarity.
-- * trend: the current 95% interval against the previous window's value (improving /
--   worsening / no change; not compared without a polarity or a value).
-- * bottom_decile: among the worst 10% of partnerships by polarity (the drug strategy's
--   "poorest performing 10%"), ranked on value; ties broken by area code.
WITH cur AS (
    SELECT *, indicator_id || '|' || basis || '|' || sex || '|' || age_band || '|' || substance_group AS bkey
    FROM indicators WHERE which = 'current'
),
prev AS (
    SELECT indicator_id || '|' || basis || '|' || sex || '|' || age_band || '|' || substance_group AS bkey, area_code, value
    FROM indicators WHERE which = 'previous'
),
geo AS (SELECT code, region_code, comparator_group FROM ref_partnerships),
keyed AS (
    SELECT c.*, g.region_code, g.comparator_group
    FROM cur c
    LEFT JOIN geo g ON g.code = c.area_code AND c.area_type = 'partnership'
),
eng AS (SELECT bkey, value AS england_value FROM cur WHERE area_type = 'england'),
reg AS (SELECT bkey, area_code, value AS region_value FROM cur WHERE area_type = 'region'),
cmp AS (SELECT bkey, area_code, value AS comparator_value FROM cur WHERE area_type = 'comparator_group'),
-- Pooled references for funnels, over partnerships: proportions and crude rates use
-- sum(numerator) / sum(denominator); DSRs use the derived denominators 100000 * O / DSR.
pooled AS (
    SELECT bkey,
           sum(numerator) / nullif(sum(denominator), 0) AS p_bar,
           sum(CASE WHEN value > 0 THEN numerator END)
               / nullif(sum(CASE WHEN value > 0 THEN 100000.0 * numerator / value END), 0) AS dsr_ref
    FROM cur WHERE area_type = 'partnership'
    GROUP BY bkey
),
joined AS (
    SELECT k.*, e.england_value,
           CASE WHEN k.area_type = 'partnership' THEN r.region_value
                WHEN k.area_type = 'region' THEN k.value END AS region_value,
           CASE WHEN k.area_type = 'partnership' THEN c.comparator_value
                WHEN k.area_type = 'comparator_group' THEN k.value END AS comparator_value,
           pl.p_bar, pl.dsr_ref,
           pv.value AS previous_value
    FROM keyed k
    LEFT JOIN eng e ON e.bkey = k.bkey
    LEFT JOIN reg r ON r.bkey = k.bkey AND r.area_code = k.region_code
    LEFT JOIN cmp c ON c.bkey = k.bkey AND c.area_code = k.comparator_group
    LEFT JOIN pooled pl ON pl.bkey = k.bkey
    LEFT JOIN prev pv ON pv.bkey = k.bkey AND pv.area_code = k.area_code
),
partnership_ranks AS (
    SELECT bkey, area_code,
           fingertips_quintile(value, 'none') OVER (PARTITION BY bkey) AS quintile,
           fingertips_quintile(value, 'none') OVER (PARTITION BY bkey, comparator_group) AS comparator_quintile,
           -- goodness rank within the comparator group (1 = best) and badness rank nationally
           row_number() OVER (
               PARTITION BY bkey, comparator_group
               ORDER BY CASE WHEN polarity = 'high_is_good' THEN -value ELSE value END NULLS LAST, area_code) AS good_rank,
           count(value) OVER (PARTITION BY bkey, comparator_group) AS group_n,
           row_number() OVER (
               PARTITION BY bkey
               ORDER BY CASE WHEN polarity = 'high_is_good' THEN value ELSE -value END NULLS LAST, area_code) AS bad_rank,
           count(value) OVER (PARTITION BY bkey) AS national_n,
           value, polarity, comparator_group
    FROM joined
    WHERE area_type = 'partnership'
),
top_quartile AS (
    SELECT bkey, comparator_group,
           min(value) AS top_quartile_min, max(value) AS top_quartile_max
    FROM partnership_ranks
    WHERE value IS NOT NULL AND polarity <> 'none' AND good_rank <= ceil(group_n / 4.0)
    GROUP BY bkey, comparator_group
),
ranked AS (
    SELECT j.*, pr.quintile, pr.comparator_quintile,
           CASE WHEN j.area_type = 'partnership' AND j.polarity <> 'none' AND j.value IS NOT NULL
                THEN pr.good_rank <= ceil(pr.group_n / 4.0) END AS in_top_quartile,
           coalesce(j.area_type = 'partnership' AND j.polarity <> 'none' AND j.value IS NOT NULL
                    AND pr.bad_rank <= ceil(pr.national_n / 10.0), false) AS bottom_decile,
           tq.top_quartile_min, tq.top_quartile_max
    FROM joined j
    LEFT JOIN partnership_ranks pr ON pr.bkey = j.bkey AND pr.area_code = j.area_code
    LEFT JOIN top_quartile tq ON tq.bkey = j.bkey AND tq.comparator_group = j.comparator_group
)
SELECT r.indicator_id, r.indicator_name, r.period, r.basis, r.area_code, r.area_name, r.area_type,
       r.region_code, r.comparator_group,
       r.sex, r.age_band, r.substance_group, r.unit, r.polarity,
       r.numerator, r.denominator, r.value, r.lower95, r.upper95, r.lower998, r.upper998,
       r.england_value, r.region_value, r.comparator_value,
       CASE WHEN r.area_type = 'england' THEN 'not compared'
            ELSE compare_to_benchmark(r.value, r.lower95, r.upper95, r.england_value, r.polarity) END AS comparison,
       CASE WHEN r.area_type = 'england' THEN 'not compared'
            ELSE compare_to_benchmark_2level(r.value, r.lower95, r.upper95, r.lower998, r.upper998, r.england_value, r.polarity) END AS comparison_2level,
       CASE WHEN r.area_type = 'partnership'
            THEN compare_to_benchmark(r.value, r.lower95, r.upper95, r.region_value, r.polarity)
            ELSE 'not compared' END AS region_comparison,
       CASE WHEN r.area_type = 'partnership'
            THEN compare_to_benchmark(r.value, r.lower95, r.upper95, r.comparator_value, r.polarity)
            ELSE 'not compared' END AS comparator_comparison,
       r.quintile, r.comparator_quintile,
       CASE WHEN r.area_type <> 'partnership' OR r.numerator IS NULL OR r.denominator IS NULL THEN NULL
            WHEN r.unit = '%' AND r.denominator > 0
                 THEN funnel_significance_proportion(r.numerator, r.denominator, r.p_bar)
            WHEN r.unit = 'per 100,000' AND r.age_band = 'all' AND r.indicator_id LIKE '%_dsr'
                 THEN CASE WHEN r.numerator < 10 THEN 'Not applicable for events less than 10 for dsrs'
                           ELSE funnel_significance_ratio(r.numerator, 100000.0 * r.numerator / r.value, r.dsr_ref) END
            WHEN r.unit = 'per 100,000' AND r.denominator > 0
                 THEN funnel_significance_ratio(r.numerator, r.denominator, r.p_bar)
       END AS funnel_significance,
       r.top_quartile_min, r.top_quartile_max, r.in_top_quartile,
       CASE WHEN r.polarity = 'none' THEN 'not compared'
            ELSE CASE compare_to_benchmark(r.value, r.lower95, r.upper95, r.previous_value, r.polarity)
                     WHEN 'better' THEN 'improving'
                     WHEN 'worse' THEN 'worsening'
                     WHEN 'similar' THEN 'no change'
                     ELSE 'not compared' END END AS trend,
       r.previous_value,
       r.bottom_decile,
       r.provisional, r.note,
       (SELECT run_id FROM run_params) AS run_id
FROM ranked r
