# Reference values for drd-stats' alert methods, computed by the R package `surveillance`
# (Debian r-cran-surveillance): earsC (C1, C2, C3), algo.cusum and farringtonFlexible with the
# Noufaily settings. Writes the series it made and R's outputs as JSON; drd-stats' tests
# (tests/it/alerts.rs) compare statistic, threshold and alarm with them. Only R's output is
# used: nothing here re-implements a method.
#
#   Rscript tests/r/alerts_reference.R crates/drd-stats/tests/fixtures/alerts_reference.json
suppressPackageStartupMessages(library(surveillance))
args <- commandArgs(trailingOnly = TRUE)
out <- if (length(args) >= 1) args[1] else "alerts_reference.json"

num <- function(x) {
  if (length(x) == 0) return("[]")
  paste0("[", paste(ifelse(is.na(x), "null", sprintf("%.17g", as.numeric(x))), collapse = ","), "]")
}
lgl <- function(x) {
  paste0("[", paste(ifelse(is.na(x), "null", ifelse(x, "true", "false")), collapse = ","), "]")
}
str <- function(s) paste0('"', s, '"')
obj <- function(...) {
  kv <- list(...)
  paste0("{", paste(sprintf('"%s":%s', names(kv), unlist(kv)), collapse = ","), "}")
}

cases <- character(0)
add <- function(x) cases <<- c(cases, x)

# ---- EARS -------------------------------------------------------------------------------
set.seed(20261126)
ears_series <- list(
  poisson3 = rpois(80, 3),
  outbreak = c(rpois(50, 4), 4 + c(3, 8, 14, 20, 12), rpois(25, 4)),
  sparse = rpois(70, 0.6),
  trend = rpois(90, seq(2, 12, length.out = 90))
)
for (nm in names(ears_series)) {
  x <- ears_series[[nm]]
  for (method in c("C1", "C2", "C3")) {
    for (cfg in list(list(baseline = 7, minSigma = 0), list(baseline = 10, minSigma = 0.5),
                     list(baseline = 5, minSigma = 0, alpha = 0.05))) {
      ctl <- list(method = method, baseline = cfg$baseline, minSigma = cfg$minSigma)
      if (!is.null(cfg$alpha)) ctl$alpha <- cfg$alpha
      s <- sts(observed = x, frequency = 52, start = c(2020, 1))
      r <- earsC(s, control = ctl)
      first <- switch(method, C1 = cfg$baseline + 1, C2 = cfg$baseline + 3, C3 = cfg$baseline + 5)
      add(obj(kind = str("ears"), name = str(nm), method = str(method),
              baseline = cfg$baseline, min_sigma = cfg$minSigma,
              alpha = if (is.null(cfg$alpha)) "null" else cfg$alpha,
              series = num(x), first = first,
              threshold = num(as.vector(upperbound(r))), alarm = lgl(as.vector(alarms(r)))))
    }
  }
}

# ---- CUSUM ------------------------------------------------------------------------------
cusum_series <- list(
  shift = c(rpois(60, 5), rpois(40, 9)),
  flat = rpois(90, 7)
)
for (nm in names(cusum_series)) {
  x <- cusum_series[[nm]]
  for (cfg in list(list(k = 1.04, h = 2.26, baseline = 52), list(k = 0.5, h = 4, baseline = 30))) {
    d <- create.disProg(week = seq_along(x), observed = x, state = rep(0, length(x)))
    r <- algo.cusum(d, control = list(range = (cfg$baseline + 1):length(x), k = cfg$k, h = cfg$h,
                                      trans = "standard"))
    add(obj(kind = str("cusum"), name = str(nm), k = cfg$k, h = cfg$h, baseline = cfg$baseline,
            series = num(x), statistic = num(as.vector(r$cusum)),
            threshold = num(as.vector(r$upperbound)), alarm = lgl(as.vector(r$alarm) == 1)))
  }
}

# ---- Farrington flexible, Noufaily settings ------------------------------------------------
weeks <- 8 * 52
t <- seq_len(weeks)
season <- exp(0.6 * sin(2 * pi * t / 52) + 0.3 * cos(2 * pi * t / 52))
far_series <- list(
  seasonal = rpois(weeks, 6 * season * exp(0.0008 * t)),
  overdispersed = rnbinom(weeks, mu = 10 * season, size = 4),
  low = rpois(weeks, 1.2 * season)
)
# Outbreaks: a past one (to be down-weighted) and a recent one (to be detected).
far_series$seasonal[300:303] <- far_series$seasonal[300:303] + c(10, 18, 25, 12)
far_series$seasonal[390:392] <- far_series$seasonal[390:392] + c(14, 22, 30)
far_series$overdispersed[350:352] <- far_series$overdispersed[350:352] + c(20, 35, 25)
far_series$low[380:381] <- far_series$low[380:381] + c(6, 9)
ctl <- list(b = 5, w = 3, noPeriods = 10, pastWeeksNotIncluded = 26, weightsThreshold = 2.58,
            pThresholdTrend = 1, thresholdMethod = "nbPlugin", alpha = 0.05, reweight = TRUE,
            trend = TRUE, limit54 = c(5, 4), glmWarnings = FALSE)
for (nm in names(far_series)) {
  x <- far_series[[nm]]
  s <- sts(observed = x, frequency = 52, start = c(2015, 1))
  first <- 52 * ctl$b + ctl$w + 1
  r <- farringtonFlexible(s, control = c(ctl, list(range = first:weeks)))
  add(obj(kind = str("farrington"), name = str(nm), series = num(x), first = first,
          expected = num(as.vector(r@control$expected)),
          threshold = num(as.vector(upperbound(r))), alarm = lgl(as.vector(alarms(r)))))
}

writeLines(paste0('{"generator":"R surveillance ', as.character(packageVersion("surveillance")),
                  '","cases":[', paste(cases, collapse = ",\n"), "]}"), out)
cat("wrote", length(cases), "cases to", out, "\n")
