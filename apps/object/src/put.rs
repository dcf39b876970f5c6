//! Object PUT (§4.2).
//!
//! Every pre-check — timestamp, creation constraints, metadata, device,
//! If-None-Match, the 409 against newer data or tombstones, free space —
//! happens before the body is read, so `100 Continue` is only sent for a
//! PUT that can succeed. The body streams into a temporary file while its
//! MD5 is computed; on any failure the temporary file is dropped (removed),
//! so nothing half-written is ever visible.

use crate::diskfile::{OpenError, Opened};
use crate::meta::{is_sysmeta, is_transient_sysmeta, is_user_meta, title, Meta};
use crate::mime::MimeReader;
use crate::{insufficient_storage, page, text, update, Ctx};
use aerie_api::{BodyFraming, Header, RequestBody, RequestHead, Response, Status};
use aerie_storage::fs::{is_full, TempFile};
use aerie_storage::swift_conf::Constraints;
use aerie_storage::Timestamp;
use md5::{Digest, Md5};
use std::io::{self, Read, Write};

/// Swift's `check_metadata` for objects: per-request limits (§3.2).
pub(crate) fn check_metadata(head: &RequestHead, c: &Constraints) -> Result<(), Response> {
    aerie_storage::constraints::check_metadata(head, aerie_storage::constraints::MetaTarget::Object, c)
}

/// `normalize_delete_at_timestamp`: `%010d` of the value clamped to
/// 0..=9999999999.
pub(crate) fn normalize_delete_at(v: f64) -> String {
    format!("{:010}", v.clamp(0.0, 9_999_999_999.0) as i64)
}

/// `check_delete_headers` (§4.2 step 3): X-Delete-After becomes X-Delete-At.
/// Returns the X-Delete-At to store, if any.
pub(crate) fn delete_at(ctx: &Ctx<'_>, ts: Timestamp) -> Result<Option<String>, Response> {
    let now = ts.units() as f64 / 100_000.0;
    let mut at = ctx.header("x-delete-at").map(|s| s.to_string());
    if let Some(after) = ctx.header("x-delete-after") {
        let after: i64 = after.trim().parse().map_err(|_| text(Status::BAD_REQUEST, "Non-integer X-Delete-After"))?;
        let actual = normalize_delete_at(now + after as f64);
        if actual.parse::<f64>().unwrap_or(0.0) <= now {
            return Err(text(Status::BAD_REQUEST, "X-Delete-After in past"));
        }
        at = Some(actual);
    }
    if let Some(v) = &at {
        let n: i64 = v.trim().parse().map_err(|_| text(Status::BAD_REQUEST, "Non-integer X-Delete-At"))?;
        let n: i64 = normalize_delete_at(n as f64).parse().unwrap_or(0);
        if (n as f64) <= now && !ctx.is_true("x-backend-replication") {
            return Err(text(Status::BAD_REQUEST, "X-Delete-At in past"));
        }
    }
    Ok(at)
}

fn etag_normalize(v: &str) -> String {
    let v = v.trim();
    v.strip_prefix('"').and_then(|x| x.strip_suffix('"')).unwrap_or(v).to_string()
}

pub(crate) fn put(ctx: &Ctx<'_>, mut body: RequestBody) -> Response {
    match put_inner(ctx, &mut body) {
        Ok(r) | Err(r) => r,
    }
}

fn put_inner(ctx: &Ctx<'_>, body: &mut RequestBody) -> Result<Response, Response> {
    let c = &ctx.cfg.swift.constraints;
    let ts = ctx.required_timestamp()?;
    let framing = ctx.head.framing();
    let content_length = match framing {
        BodyFraming::Length(n) => Some(n),
        _ => None,
    };
    if content_length.is_some_and(|n| n > c.max_file_size) {
        return Err(text(Status::PAYLOAD_TOO_LARGE, "Your request is too large."));
    }
    if framing == BodyFraming::None {
        return Err(text(Status::LENGTH_REQUIRED, "Missing Content-Length header."));
    }
    let name_len = ctx.path.object.chars().count();
    if name_len > c.max_object_name_length {
        return Err(text(
            Status::BAD_REQUEST,
            format!("Object name length of {name_len} longer than {}", c.max_object_name_length),
        ));
    }
    let Some(content_type) = ctx.header_bytes("content-type") else {
        return Err(text(Status::BAD_REQUEST, "No content type"));
    };
    let delete_at = delete_at(ctx, ts)?;
    if std::str::from_utf8(content_type).is_err() {
        return Err(text(Status::BAD_REQUEST, "Invalid Content-Type"));
    }
    check_metadata(ctx.head, c)?;
    let fsize =
        match content_length {
            Some(n) => Some(n),
            None => match ctx.header("x-backend-obj-content-length") {
                Some(v) => Some(v.trim().parse::<u64>().map_err(|_| {
                    text(Status::BAD_REQUEST, format!("invalid literal for int() with base 10: '{v}'"))
                })?),
                None => None,
            },
        };
    let multiphase = ctx.is_true("x-backend-obj-multiphase-commit");
    let footer = ctx.is_true("x-backend-obj-metadata-footer");
    let mime_boundary = if footer || multiphase {
        match ctx.header("x-backend-obj-multipart-mime-boundary").filter(|b| !b.is_empty()) {
            Some(b) => Some(b.to_string()),
            None => return Err(text(Status::BAD_REQUEST, "no MIME boundary")),
        }
    } else {
        None
    };
    let df = ctx.diskfile()?;
    let device = ctx.path.device.as_str();
    let (orig_meta, orig_ts) = match df.open(ts, false) {
        Ok(Opened { meta, data_timestamp, .. }) => (Some(meta), data_timestamp),
        Err(OpenError::Deleted(t)) | Err(OpenError::Expired(t, _)) => (None, t),
        Err(OpenError::NotFound) | Err(OpenError::Quarantined(_)) | Err(OpenError::Collision) => {
            (None, Timestamp::ZERO)
        }
        Err(OpenError::Io(e)) if is_full(&e) => return Err(insufficient_storage(device)),
        Err(OpenError::Io(e)) => {
            log::error!("PUT {}: reading the current state failed: {e}", ctx.path.name());
            return Err(page(Status::INTERNAL_SERVER_ERROR));
        }
    };
    if let (Some(inm), Some(orig)) = (ctx.header("if-none-match"), orig_meta.as_ref()) {
        let list = crate::conditional::etag_list(inm);
        let stored = orig.get_str("ETag").unwrap_or("");
        if list.iter().any(|e| e == "*" || e == stored) {
            return Err(page(Status::PRECONDITION_FAILED));
        }
    }
    if orig_ts >= ts {
        return Err(page(Status::CONFLICT).with_header("X-Backend-Timestamp", orig_ts.internal().into_bytes()));
    }
    match ctx.cfg.reserve.would_cross(&df.device_dir, fsize.unwrap_or(0)) {
        Ok(true) => {
            log::warn!("device {device} is below fallocate_reserve: refusing a PUT");
            return Err(insufficient_storage(device));
        }
        Ok(false) => {}
        Err(e) => log::warn!("could not check free space on {device}: {e}"),
    }
    let mut tmp = TempFile::create(&df.tmpdir()).map_err(|e| io_error(ctx, "creating a temporary file", &e))?;
    if let Some(n) = fsize {
        tmp.preallocate(n).map_err(|e| io_error(ctx, "preallocating", &e))?;
    }
    let mut mime: Option<MimeReader<&mut RequestBody>> = None;
    let (upload_size, etag, footers) = match &mime_boundary {
        None => {
            let (n, e) = stage_body(ctx, body, &mut tmp)?;
            (n, e, Meta::default())
        }
        Some(boundary) => {
            // Announce what will be read (the proxy marks a node that does
            // not as failed), then take the object from the first document
            // and the footer from the second.
            let mut announce = Vec::new();
            if multiphase {
                announce.push(Header::new("X-Obj-Multiphase-Commit", &b"yes"[..]));
            }
            if footer {
                announce.push(Header::new("X-Obj-Metadata-Footer", &b"yes"[..]));
            }
            let _ = body.send_continue(announce);
            let mut reader = MimeReader::new(&mut *body, boundary);
            reader.start().map_err(|e| mime_error(ctx, &e))?;
            if reader.next_part().map_err(|e| mime_error(ctx, &e))?.is_none() {
                return Err(text(Status::BAD_REQUEST, "couldn't find the object MIME doc"));
            }
            let (n, e) = stage_body(ctx, &mut MimeBody(&mut reader), &mut tmp)?;
            let footers = if footer { read_footer(ctx, &mut reader)? } else { Meta::default() };
            mime = Some(reader);
            (n, e, footers)
        }
    };
    if fsize.is_some_and(|n| n != upload_size) {
        return Err(page(Status::CLIENT_DISCONNECT));
    }
    // In Swift's order (its writer adds the name last), so the metadata
    // pickles are the same bytes.
    let mut meta = Meta::default();
    meta.set("X-Timestamp", ts.internal());
    meta.set("Content-Type", content_type.to_vec());
    meta.set("Content-Length", upload_size.to_string());
    meta.set("ETag", etag.clone());
    // X-Delete-At is stored normalized, below.
    ctx.copy_request_meta(&mut meta, true, "x-delete-at");
    if let Some(at) = &delete_at {
        meta.set("X-Delete-At", at.clone());
    }
    for (k, v) in &footers.0 {
        if is_user_meta(k) || is_sysmeta(k) || is_transient_sysmeta(k) {
            meta.set(&title(k), v.clone());
        }
    }
    meta.set("name", ctx.path.name());
    let received = footers.get_str("etag").map(str::to_string).or_else(|| ctx.header("etag").map(str::to_string));
    if let Some(sent) = received {
        let sent = etag_normalize(&sent);
        if !sent.is_empty() && sent != etag {
            return Err(page(Status::UNPROCESSABLE));
        }
    }
    // EC: the fragment index (the proxy's footer says it, a reconstructor
    // its header) names the file, not durable until the commit.
    let frag_index = match ctx.layout() {
        crate::ondisk::Layout::Replicated => None,
        crate::ondisk::Layout::Ec { fragments } => {
            let fi = meta.get_str("X-Object-Sysmeta-Ec-Frag-Index").unwrap_or("");
            match fi.trim().parse::<u32>() {
                Ok(i) if i < fragments => Some(i),
                _ => return Err(text(Status::BAD_REQUEST, format!("Bad fragment index: {fi:?}"))),
            }
        }
    };
    let file_name = match frag_index {
        Some(fi) => crate::ondisk::ec_data_name(ts, fi, false),
        None => format!("{}.data", ts.internal()),
    };
    df.publish(tmp, &file_name, &meta, ctx.staging).map_err(|e| io_error(ctx, "publishing the object", &e))?;
    if let Some(reader) = mime.as_mut() {
        if multiphase {
            // Data written: ask for the commit, which must come.
            let _ = reader.inner_mut().send_interim_continue();
            let commit = reader.next_part().map_err(|e| mime_error(ctx, &e))?;
            let Some(headers) = commit else {
                return Err(text(Status::BAD_REQUEST, "couldn't find PUT commit MIME doc"));
            };
            let _ = reader.read_body_to_end(1 << 16).map_err(|e| mime_error(ctx, &e))?;
            if !headers.iter().any(|(k, v)| k == "x-document" && v == "put commit") {
                return Err(page(Status::INTERNAL_SERVER_ERROR));
            }
        }
    }
    if let Some(fi) = frag_index {
        if !ctx.is_true("x-backend-no-commit") {
            df.commit_durable(ts, fi).map_err(|e| io_error(ctx, "making the fragment durable", &e))?;
        }
    }
    if let Some(reader) = mime.as_mut() {
        // Whatever follows (normally only the closing boundary).
        while !reader.finished() {
            if reader.next_part().map_err(|e| mime_error(ctx, &e))?.is_none() {
                break;
            }
        }
    }
    let orig_delete_at = orig_meta.as_ref().and_then(|m| m.get_str("X-Delete-At")).map(str::to_string);
    update::after_put(ctx, &df.device_dir, &meta, &footers, orig_delete_at.as_deref(), delete_at.as_deref());
    Ok(Response::new(Status::CREATED).with_header("Etag", format!("\"{etag}\"").into_bytes()))
}

fn io_error(ctx: &Ctx<'_>, what: &str, e: &io::Error) -> Response {
    if is_full(e) {
        log::warn!("PUT {} on {}: {what}: {e}: 507", ctx.path.name(), ctx.path.device);
        return insufficient_storage(&ctx.path.device);
    }
    log::error!("PUT {} on {}: {what} failed: {e}", ctx.path.name(), ctx.path.device);
    page(Status::INTERNAL_SERVER_ERROR)
}

/// The object document of a MIME PUT, as a reader.
struct MimeBody<'a, R: Read>(&'a mut MimeReader<R>);

impl<R: Read> Read for MimeBody<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.0.read_body(out)
    }
}

fn mime_error(ctx: &Ctx<'_>, e: &io::Error) -> Response {
    match e.kind() {
        io::ErrorKind::TimedOut => page(Status::REQUEST_TIMEOUT),
        io::ErrorKind::InvalidData => text(Status::BAD_REQUEST, e.to_string()),
        _ => {
            log::info!("PUT {}: client body ended early: {e}", ctx.path.name());
            page(Status::CLIENT_DISCONNECT)
        }
    }
}

/// The footer document: JSON headers whose MD5 must match (§4.12).
fn read_footer<R: Read>(ctx: &Ctx<'_>, mime: &mut MimeReader<R>) -> Result<Meta, Response> {
    let Some(headers) = mime.next_part().map_err(|e| mime_error(ctx, &e))? else {
        return Err(text(Status::BAD_REQUEST, "couldn't find footer MIME doc"));
    };
    let body = mime.read_body_to_end(1 << 20).map_err(|e| mime_error(ctx, &e))?;
    let Some(md5) = headers.iter().find(|(k, _)| k == "content-md5").map(|(_, v)| v.clone()) else {
        return Err(text(Status::BAD_REQUEST, "no Content-MD5 in footer"));
    };
    if md5 != aerie_storage::hash::md5_hex(&body) {
        return Err(text(Status::UNPROCESSABLE, "footer MD5 mismatch"));
    }
    let json: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&body).map_err(|_| text(Status::BAD_REQUEST, "invalid JSON for footer doc"))?;
    let mut m = Meta::default();
    for (k, v) in json {
        let v = match v {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        };
        m.set(&title(&k), v.into_bytes());
    }
    Ok(m)
}

/// Copy the body into the temporary file; (bytes, md5 hex).
fn stage_body<B: Read>(ctx: &Ctx<'_>, body: &mut B, tmp: &mut TempFile) -> Result<(u64, String), Response> {
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return Err(page(Status::REQUEST_TIMEOUT)),
            Err(e) => {
                log::info!("PUT {}: client body ended early: {e}", ctx.path.name());
                return Err(page(Status::CLIENT_DISCONNECT));
            }
        };
        let chunk = buf.get(..n).unwrap_or(&[]);
        hasher.update(chunk);
        tmp.file().write_all(chunk).map_err(|e| io_error(ctx, "writing", &e))?;
        total += n as u64;
    }
    Ok((total, aerie_storage::hash::hex(&hasher.finalize())))
}
