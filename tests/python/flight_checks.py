"""Real Flight SQL clients against `drdsurv serve --flight`: ADBC (adbc-driver-flightsql with
pyarrow) and pyarrow.flight.

    flight_checks.py roles SPEC.json   role boundaries, authentication, read-only, limits, audit
    flight_checks.py query SPEC.json   one query as one role; prints the rows as JSON (Ballista and
                                       federation tests compare them)

SPEC is written by the Rust test (tests/e2e/flight.rs): the URI, tokens, the JWT secret, the
partnership codes and, for `query`, the role and SQL. Every check raises on failure; `roles`
prints a JSON summary of what it proved.
"""

import base64
import hashlib
import hmac
import json
import sys
import time

import adbc_driver_flightsql.dbapi as flightsql
import adbc_driver_manager
import pyarrow.flight as flight
from adbc_driver_flightsql import DatabaseOptions


def jwt(secret, claims):
    enc = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    head = enc(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = enc(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{enc(sig)}"


def connect(spec, header=None, username=None, password=None):
    kw = {}
    if header is not None:
        kw[DatabaseOptions.AUTHORIZATION_HEADER.value] = header
    if username is not None:
        kw["username"] = username
        kw["password"] = password
    if spec.get("tls_root_pem"):
        kw[DatabaseOptions.TLS_ROOT_CERTS.value] = spec["tls_root_pem"]
    return flightsql.connect(spec["uri"], db_kwargs=kw, autocommit=True)


class Client:
    def __init__(self, spec, header=None, username=None, password=None):
        self.conn = connect(spec, header, username, password)

    def table(self, sql, params=None):
        cur = self.conn.cursor()
        try:
            if params is None:
                cur.execute(sql)
            else:
                cur.execute(sql, parameters=params)
            return cur.fetch_arrow_table()
        finally:
            cur.close()

    def one(self, sql):
        t = self.table(sql)
        return t.column(0)[0].as_py()

    def fails(self, sql, *needles):
        try:
            t = self.table(sql)
        except Exception as e:  # the driver's error types differ by status code
            msg = str(e)
            for n in needles:
                assert n.lower() in msg.lower(), f"{sql!r}: expected {n!r} in error, got {msg}"
            return msg
        raise AssertionError(f"{sql!r} should have failed, returned {t.num_rows} rows")

    def close(self):
        self.conn.close()


def unauthenticated(spec, header=None, username=None, password=None):
    """Connecting and querying with this credential must fail with UNAUTHENTICATED."""
    try:
        c = Client(spec, header, username, password)
        c.table("SELECT 1")
    except adbc_driver_manager.Error as e:
        assert e.status_code == adbc_driver_manager.AdbcStatusCode.UNAUTHENTICATED, (
            f"expected UNAUTHENTICATED, got {e.status_code}: {e}"
        )
        return str(e)
    raise AssertionError(f"credential {header!r}/{username!r} was accepted")


def roles(spec):
    out = {}
    started = time.time()
    a, b = spec["area"], spec["other_area"]
    nat = Client(spec, "Bearer " + spec["tokens"]["national"])
    part = Client(spec, "Bearer " + spec["tokens"]["partnership"])
    pub = Client(spec, "Bearer " + spec["tokens"]["public"])

    # --- Authentication -----------------------------------------------------------------
    out["no_token"] = unauthenticated(spec)
    out["bad_token"] = unauthenticated(spec, "Bearer not-a-token")
    secret = spec["jwt_secret"]
    out["expired_jwt"] = unauthenticated(
        spec, "Bearer " + jwt(secret, {"sub": "x", "role": "national", "exp": int(time.time()) - 60})
    )
    out["forged_jwt"] = unauthenticated(
        spec,
        "Bearer " + jwt("a-different-secret-a-different-secret",
                        {"sub": "x", "role": "national", "exp": int(time.time()) + 600}),
    )
    good = Client(spec, "Bearer " + jwt(secret, {"sub": "jwt-user", "role": f"partnership:{a}",
                                                  "exp": int(time.time()) + 600}))
    assert good.one("SELECT count(*) FROM sources.coroner WHERE residence_area <> '%s'" % a) == 0
    assert good.one("SELECT count(*) FROM sources.coroner") > 0
    good.close()
    # Basic handshake through ADBC (username/password) and through pyarrow.flight.
    basic = Client(spec, username=spec["basic_user"], password=spec["tokens"]["national"])
    assert basic.one("SELECT count(*) FROM reference.partnerships") == 152
    basic.close()
    out["basic_wrong"] = unauthenticated(spec, username=spec["basic_user"], password="wrong")
    opts = {"tls_root_certs": spec["tls_root_pem"].encode()} if spec.get("tls_root_pem") else {}
    fc = flight.FlightClient(spec["uri"], **opts)
    key, value = fc.authenticate_basic_token(spec["basic_user"], spec["tokens"]["national"])
    assert value.decode().startswith("Bearer "), value
    try:
        flight.FlightClient(spec["uri"], **opts).authenticate_basic_token(spec["basic_user"], "nope")
        raise AssertionError("pyarrow.flight Basic handshake with a wrong token succeeded")
    except flight.FlightUnauthenticatedError:
        pass
    # Without any credential, pyarrow.flight's raw call is refused too.
    try:
        list(flight.FlightClient(spec["uri"], **opts).list_actions())
    except flight.FlightError:
        pass

    # --- Row filters: equal to national's explicit WHERE, neither empty nor everything ----
    proofs = {}
    for t, col in [("coroner", "residence_area"), ("current_coroner", "residence_area"),
                   ("top", "partnership_code"), ("current_top", "partnership_code"),
                   ("nsp", "partnership_code"), ("current_nsp", "partnership_code")]:
        mine = part.one(f"SELECT count(*) FROM sources.{t}")
        want = nat.one(f"SELECT count(*) FROM sources.{t} WHERE {col} = '{a}'")
        total = nat.one(f"SELECT count(*) FROM sources.{t}")
        assert mine == want, f"sources.{t}: partnership sees {mine}, national WHERE gives {want}"
        assert 0 < mine < total, f"sources.{t}: {mine} of {total}"
        proofs[f"sources.{t}"] = [mine, total]
    cols = nat.table(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_catalog = 'drdsurv' AND table_schema = 'marts'"
    ).to_pylist()
    by_table = {}
    for r in cols:
        by_table.setdefault(r["table_name"], set()).add(r["column_name"])
    visible = {r["table_name"] for r in part.table(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts'").to_pylist()}
    for t, cs in sorted(by_table.items()):
        if "area_code" in cs:
            cond = f"area_code = '{a}'" + (" OR area_type <> 'partnership'" if "area_type" in cs else "")
        elif "partnership_code" in cs:
            cond = f"partnership_code = '{a}'"
        elif "residence_area" in cs:
            cond = f"residence_area = '{a}'"
        else:
            assert t not in visible, f"marts.{t} has no area column but partnership can see it"
            part.fails(f"SELECT count(*) FROM marts.{t}", "not found")
            proofs[f"marts.{t}"] = "national only"
            continue
        assert t in visible, f"marts.{t} should be visible to the partnership"
        mine = part.one(f"SELECT count(*) FROM marts.{t}")
        want = nat.one(f"SELECT count(*) FROM marts.{t} WHERE {cond}")
        total = nat.one(f"SELECT count(*) FROM marts.{t}")
        assert mine == want, f"marts.{t}: partnership sees {mine}, national WHERE gives {want}"
        assert mine < total or total == 0, f"marts.{t}: partnership sees all {total} rows"
        proofs[f"marts.{t}"] = [mine, total]
    assert any(isinstance(v, list) and v[0] > 0 for k, v in proofs.items() if k.startswith("marts."))
    out["row_filters"] = proofs
    # Published figures: every area, for every role.
    n_pub = nat.one("SELECT count(*) FROM published.indicators")
    assert n_pub > 0
    assert part.one("SELECT count(*) FROM published.indicators") == n_pub
    assert pub.one("SELECT count(*) FROM published.indicators") == n_pub
    assert part.one(f"SELECT count(DISTINCT area_code) FROM published.indicators WHERE area_type = 'partnership'") > 100

    # --- Partnership A reading partnership B: directly, joins, CTEs, subqueries, functions --
    leaks = [
        f"SELECT count(*) FROM sources.coroner WHERE residence_area = '{b}'",
        f"SELECT count(*) FROM sources.top t JOIN sources.nsp n ON t.partnership_code = n.partnership_code WHERE t.partnership_code = '{b}'",
        f"WITH x AS (SELECT * FROM sources.top) SELECT count(*) FROM x WHERE partnership_code = '{b}'",
        f"SELECT count(*) FROM (SELECT * FROM sources.nsp UNION ALL SELECT * FROM sources.current_nsp) s WHERE partnership_code = '{b}'",
        f"SELECT count(*) FROM sources.coroner WHERE residence_area IN (SELECT area_code FROM marts.mart_areas WHERE area_code = '{b}')",
        f"SELECT count(*) FROM marts.benchmarks WHERE area_code = '{b}'",
        f"SELECT count(*) FROM marts.mart_deaths WHERE partnership_code = '{b}'",
        f"SELECT count(*) FROM marts.stg_deaths WHERE lower(residence_area) = lower('{b}')",
        f"SELECT count(*) FROM sources.coroner c1 RIGHT JOIN sources.coroner c2 ON false WHERE c2.residence_area = '{b}'",
    ]
    for q in leaks:
        assert part.one(q) == 0, f"leak: {q}"
    # Nothing else to reach: national-only tables do not exist for the partnership, and
    # neither do URL tables.
    for q in ["SELECT * FROM reference.partnerships", "SELECT * FROM ops.runs",
              "SELECT * FROM ops.audit", "SELECT * FROM sources.receipts_coroner",
              "SELECT * FROM sources.quarantine_top", "SELECT * FROM datafusion.public.sources_coroner",
              "SELECT * FROM sources_coroner", "SELECT * FROM marts.alert_signals"]:
        part.fails(q, "not found")
    part.fails(f"SELECT * FROM '{spec['store']}/sources/coroner'")
    names = {r["table_schema"] + "." + r["table_name"] for r in part.table(
        "SELECT table_schema, table_name FROM information_schema.tables").to_pylist()}
    assert not any(n.startswith(("reference.", "ops.")) or "receipts" in n or "quarantine" in n
                   for n in names), names
    # ADBC metadata calls list only what the role can read.
    objs = part.conn.adbc_get_objects(depth="tables", catalog_filter="drdsurv").read_all().to_pylist()
    listed = {f"{s['db_schema_name']}.{t['table_name']}" for c in objs for s in (c["catalog_db_schemas"] or [])
              for t in (s["db_schema_tables"] or [])}
    assert "sources.coroner" in listed and "marts.benchmarks" in listed, sorted(listed)[:20]
    assert not any(n.startswith(("reference.", "ops.")) for n in listed), listed
    sch = part.conn.adbc_get_table_schema("benchmarks", catalog_filter="drdsurv", db_schema_filter="marts")
    assert "area_code" in sch.names
    out["partnership_tables"] = len(listed)

    # --- Public: published only -----------------------------------------------------------
    for q in ["SELECT count(*) FROM sources.coroner", "SELECT count(*) FROM marts.benchmarks",
              "SELECT count(*) FROM sources.current_top"]:
        pub.fails(q, "not found")
    pub_names = {r["table_schema"] for r in pub.table(
        "SELECT DISTINCT table_schema FROM information_schema.tables WHERE table_schema <> 'information_schema'").to_pylist()}
    assert pub_names <= {"published", "marts"}, pub_names
    assert pub.one("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'marts'") == 0

    # --- Read-only --------------------------------------------------------------------------
    refused = {}
    for q in ["CREATE TABLE x AS SELECT 1", "DROP TABLE marts.benchmarks",
              "INSERT INTO marts.benchmarks SELECT * FROM marts.benchmarks",
              "DELETE FROM marts.benchmarks", "UPDATE marts.benchmarks SET value = 0",
              "COPY (SELECT 1) TO '/tmp/drdsurv-copy-test.csv'",
              f"CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '{spec['store']}/published'",
              "CREATE VIEW v AS SELECT 1",
              "SET datafusion.execution.batch_size = 1",
              "SET datafusion.runtime.memory_limit = '100G'"]:
        refused[q] = nat.fails(q)
    out["refused"] = len(refused)
    assert nat.one("SELECT count(*) FROM marts.benchmarks") > 0

    # --- Functions and parameters -------------------------------------------------------------
    assert abs(nat.one("SELECT wilson_lower(81, 263, 0.95)") - 0.2552885) < 1e-6
    t = part.table("SELECT count(*) AS n FROM published.indicators WHERE area_code = $1", params=(a,))
    assert t.column(0)[0].as_py() > 0

    # --- Memory limit: each memory-tracked operator fails on its own --------------------------
    mem = {}
    for name, q in [
        # 2 kB keys: the 256M limit of the test server is reached after about 100,000 rows.
        ("sort", "SELECT repeat('x', 2000) || v AS s FROM generate_series(1, 5000000) t(v) ORDER BY s"),
        ("hash_aggregate", "SELECT repeat('x', 2000) || v AS s, count(*) FROM generate_series(1, 5000000) t(v) GROUP BY s"),
        ("hash_join", "SELECT count(*) FROM (SELECT repeat('x', 2000) || v AS s FROM generate_series(1, 5000000) t(v)) a "
                      "JOIN (SELECT repeat('x', 2000) || w AS s FROM generate_series(1, 5000000) t(w)) b ON a.s = b.s"),
    ]:
        mem[name] = nat.fails(q, "memory limit")
    out["memory"] = {k: v[:160] for k, v in mem.items()}
    # ... and the server carries on. The national role planned this same text above: the
    # partnership still gets its own filtered rows (plans are kept per role).
    assert part.one("SELECT count(*) FROM marts.benchmarks") == proofs["marts.benchmarks"][0], proofs
    assert proofs["marts.benchmarks"][0] < proofs["marts.benchmarks"][1], proofs

    # --- Audit: who, what, how many rows, how long, outcome -------------------------------------
    time.sleep(spec.get("audit_wait", 3))
    audit = nat.table("SELECT user, role, sql, sql_sha256, rows, duration_ms, outcome FROM ops.audit").to_pylist()
    outcomes = {}
    for r in audit:
        outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
        assert r["sql_sha256"] == hashlib.sha256(r["sql"].encode()).hexdigest()
    assert outcomes.get("ok", 0) > 20 and outcomes.get("refused", 0) >= 10 and outcomes.get("memory_limit", 0) >= 3, outcomes
    leak_row = [r for r in audit if r["sql"] == leaks[0]]
    assert leak_row and leak_row[0]["role"] == f"partnership:{a}" and leak_row[0]["rows"] == 1, leak_row
    part.fails("SELECT count(*) FROM ops.audit", "not found")
    pub.fails("SELECT count(*) FROM ops.audit", "not found")
    out["audit"] = outcomes

    for c in (nat, part, pub):
        c.close()
    out["seconds"] = round(time.time() - started, 1)
    print(json.dumps(out, sort_keys=True))


def query(spec):
    c = Client(spec, "Bearer " + spec["token"])
    t = c.table(spec["sql"])
    rows = t.to_pylist()
    c.close()
    print(json.dumps(rows, sort_keys=True, default=str))


if __name__ == "__main__":
    mode, path = sys.argv[1], sys.argv[2]
    with open(path) as f:
        spec = json.load(f)
    {"roles": roles, "query": query}[mode](spec)
