-- Every indicator row (architecture.md "Published indicator files", before comparisons), for
-- the run's windows ('current') and the windows before them ('previous', for direction of
-- travel): one row per indicator x breakdown x area.
SELECT * FROM ind_death_rates
UNION ALL BY NAME
SELECT * FROM ind_death_shares
UNION ALL BY NAME
SELECT * FROM ind_treatment
UNION ALL BY NAME
SELECT * FROM ind_nsp
