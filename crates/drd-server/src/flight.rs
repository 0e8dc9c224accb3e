//! The Arrow Flight SQL endpoint (`drdsurv serve --flight ADDR`).
//!
//! Every call authenticates first ([`crate::auth`]) and is refused with `UNAUTHENTICATED`
//! before any work when the credential is missing or wrong. Statements and prepared
//! statements run through [`QueryService`] (the caller's role session, read-only, limits,
//! audit); catalogs, schemas, tables and table types are listed from the same role session,
//! so a client never learns of a table its role cannot read.
//!
//! Errors reach clients with a status that says what happened: `RESOURCE_EXHAUSTED` for the
//! memory limit, `DEADLINE_EXCEEDED` for the time limit, `PERMISSION_DENIED` for a refused
//! (non-read-only) statement, `INVALID_ARGUMENT` for SQL that does not plan.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, Any, CommandGetCatalogs, CommandGetDbSchemas,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandPreparedStatementQuery,
    CommandStatementQuery, DoPutPreparedStatementResult, ProstMessageExt, SqlInfo,
    TicketStatementQuery,
};
use arrow_flight::{
    Action, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse,
    IpcMessage, SchemaAsIpc, Ticket,
};
use datafusion::common::ScalarValue;
use futures::{Stream, TryStreamExt};
use prost::Message;
use sha2::Digest;
use tonic::{Request, Response, Status, Streaming};

use crate::access::Role;
use crate::audit::Outcome;
use crate::auth::{AuthError, Authenticator, Principal};
use crate::query::{QueryError, QueryService};

type DoGetStream = Pin<Box<dyn Stream<Item = Result<arrow_flight::FlightData, Status>> + Send>>;

struct Prepared {
    user: String,
    sql: String,
    params: Vec<ScalarValue>,
}

/// The Flight SQL service.
pub struct Service {
    queries: Arc<QueryService>,
    auth: Authenticator,
    prepared: Mutex<HashMap<Vec<u8>, Prepared>>,
    sql_info: SqlInfoData,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("queries", &self.queries)
            .field("auth", &self.auth)
            .finish()
    }
}

fn auth_status(e: &AuthError) -> Status {
    Status::unauthenticated(e.to_string())
}

fn query_status(e: &QueryError) -> Status {
    match e.outcome {
        Outcome::MemoryLimit => Status::resource_exhausted(e.message.clone()),
        Outcome::Timeout => Status::deadline_exceeded(e.message.clone()),
        Outcome::Refused if e.message.contains("read-only") => {
            Status::permission_denied(e.message.clone())
        }
        _ => Status::invalid_argument(e.message.clone()),
    }
}

fn internal(e: impl std::fmt::Display) -> Status {
    Status::internal(e.to_string())
}

impl Service {
    pub fn new(queries: Arc<QueryService>, auth: Authenticator) -> Result<Service, String> {
        let mut b = SqlInfoDataBuilder::new();
        b.append(SqlInfo::FlightSqlServerName, "drdsurv");
        b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
        b.append(SqlInfo::FlightSqlServerArrowVersion, "59");
        b.append(SqlInfo::FlightSqlServerReadOnly, true);
        b.append(SqlInfo::FlightSqlServerSql, true);
        b.append(SqlInfo::FlightSqlServerSubstrait, false);
        b.append(SqlInfo::FlightSqlServerTransaction, 0i32);
        let sql_info = b.build().map_err(|e| e.to_string())?;
        Ok(Service {
            queries,
            auth,
            prepared: Mutex::new(HashMap::new()),
            sql_info,
        })
    }

    /// The tonic service to add to a server.
    pub fn into_server(self) -> FlightServiceServer<Service> {
        FlightServiceServer::new(self)
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20)
    }

    fn who<T>(&self, req: &Request<T>) -> Result<Principal, Status> {
        let h = match req.metadata().get("authorization") {
            None => None,
            Some(v) => Some(
                v.to_str()
                    .map_err(|_| Status::unauthenticated("unreadable authorization header"))?,
            ),
        };
        self.auth.authenticate(h).map_err(|e| auth_status(&e))
    }

    async fn info_for(
        &self,
        who: &Principal,
        sql: &str,
        params: &[ScalarValue],
        ticket: Vec<u8>,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, Status> {
        let planned = self
            .queries
            .plan_with_params(who, sql, params)
            .await
            .map_err(|e| query_status(&e))?;
        let info = FlightInfo::new()
            .try_with_schema(&planned.schema)
            .map_err(internal)?
            .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket)))
            .with_descriptor(descriptor);
        Ok(Response::new(info))
    }

    async fn run(
        &self,
        who: &Principal,
        sql: &str,
        params: &[ScalarValue],
    ) -> Result<Response<DoGetStream>, Status> {
        let planned = self
            .queries
            .plan_with_params(who, sql, params)
            .await
            .map_err(|e| query_status(&e))?;
        let schema = planned.schema.clone();
        let batches = self
            .queries
            .execute(planned)
            .await
            .map_err(|e| query_status(&e))?;
        Ok(Response::new(encode(schema, batches)))
    }

    fn batch_stream(schema: SchemaRef, batch: RecordBatch) -> Response<DoGetStream> {
        let s = futures::stream::iter([Ok(batch)]);
        let out = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(s)
            .map_err(Status::from);
        Response::new(Box::pin(out))
    }

    fn metadata_info(cmd: &impl ProstMessageExt, schema: &Schema) -> Result<FlightInfo, Status> {
        Ok(FlightInfo::new()
            .try_with_schema(schema)
            .map_err(internal)?
            .with_endpoint(
                FlightEndpoint::new().with_ticket(Ticket::new(cmd.as_any().encode_to_vec())),
            ))
    }

    async fn listing(&self, role: &Role) -> Result<Vec<(String, String, String, Schema)>, Status> {
        let ctx = self
            .queries
            .session(role)
            .await
            .map_err(|e| query_status(&e))?;
        let mut out = Vec::new();
        let mut catalogs = ctx.catalog_names();
        catalogs.sort();
        for c in catalogs {
            let Some(cat) = ctx.catalog(&c) else { continue };
            let mut schemas = cat.schema_names();
            schemas.sort();
            for s in schemas {
                let Some(sch) = cat.schema(&s) else { continue };
                let mut tables = sch.table_names();
                tables.sort();
                for t in tables {
                    if let Ok(Some(p)) = sch.table(&t).await {
                        out.push((c.clone(), s.clone(), t, p.schema().as_ref().clone()));
                    }
                }
            }
        }
        Ok(out)
    }
}

fn encode(
    schema: SchemaRef,
    batches: crate::query::Batches,
) -> Pin<Box<dyn Stream<Item = Result<arrow_flight::FlightData, Status>> + Send>> {
    let input = batches.map_err(|e| FlightError::Tonic(Box::new(query_status(&e))));
    let out = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(input)
        .map_err(Status::from);
    Box::pin(out)
}

fn new_handle(user: &str, sql: &str) -> Vec<u8> {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut h = sha2::Sha256::new();
    h.update(format!(
        "{user}\u{0}{sql}\u{0}{n}\u{0}{:?}\u{0}{}",
        std::time::SystemTime::now(),
        std::process::id()
    ));
    hex::encode(&h.finalize()[..16]).into_bytes()
}

#[tonic::async_trait]
impl FlightSqlService for Service {
    type FlightService = Service;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        let header = request
            .metadata()
            .get("authorization")
            .ok_or_else(|| auth_status(&AuthError::Missing))?
            .to_str()
            .map_err(|_| Status::unauthenticated("unreadable authorization header"))?;
        let token = if header.trim_start().starts_with("Basic ") {
            self.auth
                .basic_header(header)
                .map_err(|e| auth_status(&e))?
                .1
        } else {
            self.auth
                .authenticate(Some(header))
                .map_err(|e| auth_status(&e))?;
            header
                .trim()
                .strip_prefix("Bearer ")
                .unwrap_or_default()
                .trim()
                .to_string()
        };
        let out = futures::stream::iter([Ok(HandshakeResponse {
            protocol_version: 0,
            payload: Default::default(),
        })]);
        let mut resp: Response<Pin<Box<dyn Stream<Item = _> + Send>>> =
            Response::new(Box::pin(out));
        let v = format!("Bearer {token}")
            .parse()
            .map_err(|_| Status::internal("token is not a valid header value"))?;
        resp.metadata_mut().insert("authorization", v);
        Ok(resp)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let who = self.who(&request)?;
        let ticket = TicketStatementQuery {
            statement_handle: query.query.clone().into_bytes().into(),
        };
        self.info_for(
            &who,
            &query.query,
            &[],
            ticket.as_any().encode_to_vec(),
            request.into_inner(),
        )
        .await
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let who = self.who(&request)?;
        let sql = String::from_utf8(ticket.statement_handle.to_vec())
            .map_err(|_| Status::invalid_argument("statement handle is not UTF-8"))?;
        self.run(&who, &sql, &[]).await
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let who = self.who(&request)?;
        let planned = self
            .queries
            .plan_with_params(&who, &query.query, &[])
            .await
            .map_err(|e| query_status(&e))?;
        let opts = IpcWriteOptions::default();
        let IpcMessage(schema_bytes) = SchemaAsIpc::new(&planned.schema, &opts)
            .try_into()
            .map_err(internal)?;
        let handle = new_handle(&who.user, &query.query);
        self.prepared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                handle.clone(),
                Prepared {
                    user: who.user.clone(),
                    sql: query.query,
                    params: Vec::new(),
                },
            );
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle.into(),
            dataset_schema: schema_bytes,
            parameter_schema: Default::default(),
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        let who = self.who(&request)?;
        let mut map = self.prepared.lock().unwrap_or_else(|p| p.into_inner());
        let key = query.prepared_statement_handle.to_vec();
        if map.get(&key).is_some_and(|p| p.user == who.user) {
            map.remove(&key);
        }
        Ok(())
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let who = self.who(&request)?;
        let key = query.prepared_statement_handle.to_vec();
        let stream = request.into_inner().map_err(FlightError::from);
        let batches: Vec<RecordBatch> =
            arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(stream)
                .try_collect()
                .await
                .map_err(|e| Status::invalid_argument(format!("parameters: {e}")))?;
        let mut params = Vec::new();
        if let Some(b) = batches.iter().find(|b| b.num_rows() > 0) {
            if batches.iter().map(|b| b.num_rows()).sum::<usize>() > 1 {
                return Err(Status::invalid_argument(
                    "one row of parameters per execution is supported",
                ));
            }
            for c in b.columns() {
                params.push(ScalarValue::try_from_array(c, 0).map_err(internal)?);
            }
        }
        let mut map = self.prepared.lock().unwrap_or_else(|p| p.into_inner());
        let p = map
            .get_mut(&key)
            .filter(|p| p.user == who.user)
            .ok_or_else(|| Status::not_found("no such prepared statement"))?;
        p.params = params;
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(query.prepared_statement_handle),
        })
    }

    async fn get_flight_info_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let who = self.who(&request)?;
        let (sql, params) = self.prepared_of(&who, &cmd)?;
        self.info_for(
            &who,
            &sql,
            &params,
            cmd.as_any().encode_to_vec(),
            request.into_inner(),
        )
        .await
    }

    async fn do_get_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let who = self.who(&request)?;
        let (sql, params) = self.prepared_of(&who, &cmd)?;
        self.run(&who, &sql, &params).await
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.who(&request)?;
        let schema = query.into_builder().schema();
        Ok(Response::new(Self::metadata_info(&query, &schema)?))
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let who = self.who(&request)?;
        let mut b = query.into_builder();
        let mut seen = std::collections::BTreeSet::new();
        for (c, _, _, _) in self.listing(&who.role).await? {
            seen.insert(c);
        }
        for c in seen {
            b.append(c);
        }
        let batch = b.build().map_err(internal)?;
        Ok(Self::batch_stream(batch.schema(), batch))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.who(&request)?;
        let schema = query.clone().into_builder().schema();
        Ok(Response::new(Self::metadata_info(&query, &schema)?))
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let who = self.who(&request)?;
        let mut b = query.into_builder();
        let mut seen = std::collections::BTreeSet::new();
        for (c, s, _, _) in self.listing(&who.role).await? {
            seen.insert((c, s));
        }
        for (c, s) in seen {
            b.append(c, s);
        }
        let batch = b.build().map_err(internal)?;
        Ok(Self::batch_stream(batch.schema(), batch))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.who(&request)?;
        let schema = query.clone().into_builder().schema();
        Ok(Response::new(Self::metadata_info(&query, &schema)?))
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let who = self.who(&request)?;
        let mut b = query.into_builder();
        for (c, s, t, schema) in self.listing(&who.role).await? {
            b.append(c, s, t, "TABLE", &schema).map_err(internal)?;
        }
        let batch = b.build().map_err(internal)?;
        Ok(Self::batch_stream(batch.schema(), batch))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.who(&request)?;
        let schema = query.into_builder().schema();
        Ok(Response::new(Self::metadata_info(&query, &schema)?))
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.who(&request)?;
        let mut b = query.into_builder();
        b.append("TABLE");
        let batch = b.build().map_err(internal)?;
        Ok(Self::batch_stream(batch.schema(), batch))
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.who(&request)?;
        let schema = query.clone().into_builder(&self.sql_info).schema();
        Ok(Response::new(Self::metadata_info(&query, &schema)?))
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.who(&request)?;
        let batch = query
            .into_builder(&self.sql_info)
            .build()
            .map_err(internal)?;
        Ok(Self::batch_stream(batch.schema(), batch))
    }

    async fn do_get_fallback(
        &self,
        request: Request<Ticket>,
        message: Any,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.who(&request)?;
        Err(Status::unimplemented(format!(
            "not supported by drdsurv: {}",
            message.type_url
        )))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

impl Service {
    fn prepared_of(
        &self,
        who: &Principal,
        cmd: &CommandPreparedStatementQuery,
    ) -> Result<(String, Vec<ScalarValue>), Status> {
        let map = self.prepared.lock().unwrap_or_else(|p| p.into_inner());
        map.get(cmd.prepared_statement_handle.as_ref())
            .filter(|p| p.user == who.user)
            .map(|p| (p.sql.clone(), p.params.clone()))
            .ok_or_else(|| Status::not_found("no such prepared statement"))
    }
}

/// TLS material: a certificate chain and its private key, PEM.
#[derive(Clone)]
pub struct Tls {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls { .. }")
    }
}

/// Serves Flight SQL on `listener` until `shutdown` completes, then writes the pending audit.
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: Service,
    tls: Option<Tls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let queries = service.queries.clone();
    let mut builder = tonic::transport::Server::builder();
    if let Some(t) = tls {
        // Both rustls providers are compiled in (other dependencies want aws-lc-rs), so the
        // process default must be chosen; an earlier choice stands.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let identity = tonic::transport::Identity::from_pem(t.cert_pem, t.key_pem);
        builder = builder
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .map_err(|e| format!("TLS: {e}"))?;
    }
    // TCP_NODELAY: a Flight SQL query is two small request/response exchanges
    // (GetFlightInfo, then DoGet). With Nagle's algorithm on, each small write waited for the
    // client's delayed ACK, and `SELECT 1` took 90 ms on loopback.
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let r = builder
        .add_service(service.into_server())
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .map_err(|e| format!("flight server: {e}"));
    if let Some(a) = queries.auditor() {
        a.close().await;
    }
    r
}
