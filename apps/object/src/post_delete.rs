//! Object POST (§4.6, "fast-POST" metadata updates through `.meta` files)
//! and DELETE (§4.7, tombstones).

use crate::diskfile::{meta_file_name, OpenError, Opened};
use crate::meta::{is_sysmeta, Meta};
use crate::update::{apply_overrides, conditional_delete_at_update, container_update, delete_at_update};
use crate::{insufficient_storage, open_error_response, page, text, Ctx};
use aerie_api::{Response, Status};
use aerie_storage::fs::is_full;
use aerie_storage::Timestamp;

fn write_failed(ctx: &Ctx<'_>, what: &str, e: &std::io::Error) -> Response {
    if is_full(e) {
        return insufficient_storage(&ctx.path.device);
    }
    log::error!("{what} {} on {}: {e}", ctx.path.name(), ctx.path.device);
    page(Status::INTERNAL_SERVER_ERROR)
}

/// `swift_bytes=N` in a content type, if present.
fn swift_bytes(ctype: &str) -> Option<String> {
    ctype.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim() == "swift_bytes").then(|| v.trim().to_string())
    })
}

pub(crate) fn post(ctx: &Ctx<'_>) -> Response {
    match post_inner(ctx) {
        Ok(r) | Err(r) => r,
    }
}

fn post_inner(ctx: &Ctx<'_>) -> Result<Response, Response> {
    let ts = ctx.required_timestamp()?;
    let new_delete_at: i64 = match ctx.header("x-delete-at").map(str::trim) {
        None | Some("") => 0,
        Some(v) => v.parse().map_err(|_| text(Status::BAD_REQUEST, "Non-integer X-Delete-At"))?,
    };
    if new_delete_at != 0 && (new_delete_at as f64) < ts.units() as f64 / 100_000.0 {
        return Err(text(Status::BAD_REQUEST, "X-Delete-At in past"));
    }
    crate::put::check_metadata(ctx.head, &ctx.cfg.swift.constraints)?;
    let req_ctype = ctx.header_bytes("content-type").filter(|v| !v.is_empty());
    let req_ctype_ts = match req_ctype {
        None => Timestamp::ZERO,
        Some(_) => match ctx.header("content-type-timestamp") {
            None => ts,
            Some(v) => Timestamp::parse(v)
                .map_err(|_| text(Status::BAD_REQUEST, format!("could not convert string to float: '{v}'")))?,
        },
    };
    let df = ctx.diskfile()?;
    let open_expired = ctx.is_true("x-backend-open-expired") || ctx.is_true("x-backend-replication");
    let opened = match df.open(ts, open_expired) {
        Ok(o) => o,
        Err(OpenError::Io(e)) => {
            return Err(open_error_response(&OpenError::Io(e), &ctx.path.device, &ctx.path.name()))
        }
        Err(OpenError::Collision) => return Err(page(Status::FORBIDDEN)),
        Err(_) => return Err(page(Status::NOT_FOUND)),
    };
    let orig_ts = opened.meta.get_str("X-Timestamp").and_then(|t| Timestamp::parse(t).ok()).unwrap_or(Timestamp::ZERO);
    let orig_ctype_ts = opened.content_type_timestamp();
    if orig_ts >= ts && orig_ctype_ts >= req_ctype_ts {
        return Err(page(Status::CONFLICT).with_header("X-Backend-Timestamp", orig_ts.internal().into_bytes()));
    }
    let Opened { meta: orig_meta, data_meta, metafile, data_timestamp, .. } = &opened;
    let mut meta = if ts > orig_ts {
        let mut m = Meta::default();
        m.set("X-Timestamp", ts.internal());
        ctx.copy_request_meta(&mut m, false, "");
        let orig_delete_at = orig_meta.get_str("X-Delete-At").and_then(|v| v.trim().parse::<i64>().ok()).unwrap_or(0);
        conditional_delete_at_update(ctx, &df.device_dir, data_meta, orig_delete_at, new_delete_at);
        m
    } else {
        metafile.clone().unwrap_or_default()
    };
    let current_ctype = orig_meta.get_str("Content-Type").unwrap_or("").to_string();
    let (mut update_ctype, ctype_ts) = if req_ctype_ts > orig_ctype_ts {
        let ct = String::from_utf8_lossy(req_ctype.unwrap_or_default()).into_owned();
        meta.set("Content-Type", ct.clone());
        meta.set("Content-Type-Timestamp", req_ctype_ts.internal());
        (ct, req_ctype_ts)
    } else {
        if orig_ctype_ts != *data_timestamp {
            meta.set("Content-Type", current_ctype.clone());
            meta.set("Content-Type-Timestamp", orig_ctype_ts.internal());
        }
        (current_ctype, orig_ctype_ts)
    };
    meta.set("name", ctx.path.name());
    let meta_ts = meta.get_str("X-Timestamp").and_then(|t| Timestamp::parse(t).ok()).unwrap_or(ts);
    let ctype_in_meta = meta.get_str("Content-Type-Timestamp").and_then(|t| Timestamp::parse(t).ok());
    df.write_empty(&meta_file_name(meta_ts, ctype_in_meta), &meta, ctx.staging)
        .map_err(|e| write_failed(ctx, "POST", &e))?;
    if ctype_ts != *data_timestamp {
        if let Some(sb) = data_meta.get_str("Content-Type").and_then(swift_bytes) {
            update_ctype.push_str(&format!(";swift_bytes={sb}"));
        }
    }
    let mut headers = vec![
        ("X-Size".to_string(), orig_meta.get_str("Content-Length").unwrap_or("0").to_string()),
        ("X-Content-Type".to_string(), update_ctype.clone()),
        ("X-Timestamp".to_string(), data_timestamp.internal()),
        ("X-Content-Type-Timestamp".to_string(), ctype_ts.internal()),
        ("X-Meta-Timestamp".to_string(), meta_ts.internal()),
        ("X-Etag".to_string(), orig_meta.get_str("ETag").unwrap_or("").to_string()),
    ];
    apply_overrides(&mut headers, &[orig_meta]);
    container_update(ctx, &df.device_dir, "PUT", headers);
    let mut resp = page(Status::ACCEPTED).with_header("X-Backend-Content-Type", update_ctype.into_bytes());
    for (k, v) in &orig_meta.0 {
        if is_sysmeta(k) {
            resp = resp.with_header(k.clone(), v.clone());
        }
    }
    Ok(resp)
}

pub(crate) fn delete(ctx: &Ctx<'_>) -> Response {
    match delete_inner(ctx) {
        Ok(r) | Err(r) => r,
    }
}

fn delete_inner(ctx: &Ctx<'_>) -> Result<Response, Response> {
    let ts = ctx.required_timestamp()?;
    let df = ctx.diskfile()?;
    let (orig_ts, orig_meta, mut status) = match df.open(ts, false) {
        Ok(o) => {
            let s = if o.data_timestamp < ts { Status::NO_CONTENT } else { Status::CONFLICT };
            (o.data_timestamp, o.meta, s)
        }
        Err(OpenError::Expired(t, m)) => (t, *m, Status::NOT_FOUND),
        Err(OpenError::Deleted(t)) => (t, Meta::default(), Status::NOT_FOUND),
        Err(OpenError::NotFound) | Err(OpenError::Quarantined(_)) => {
            (Timestamp::ZERO, Meta::default(), Status::NOT_FOUND)
        }
        Err(OpenError::Collision) => return Err(page(Status::FORBIDDEN)),
        Err(e) => return Err(open_error_response(&e, &ctx.path.device, &ctx.path.name())),
    };
    let response_ts = orig_ts.max(ts);
    let orig_delete_at =
        orig_meta.get_str("X-Delete-At").and_then(|v| Timestamp::parse(v).ok()).unwrap_or(Timestamp::ZERO);
    if let Some(v) = ctx.header("x-if-delete-at") {
        let Ok(wanted) = Timestamp::parse(v) else {
            return Err(text(Status::BAD_REQUEST, "Bad X-If-Delete-At header value"));
        };
        if !orig_ts.is_set() {
            return Err(page(Status::NOT_FOUND));
        }
        if orig_ts >= ts {
            return Err(page(Status::CONFLICT));
        }
        if orig_delete_at != wanted {
            return Err(text(Status::PRECONDITION_FAILED, "X-If-Delete-At and X-Delete-At do not match"));
        }
        status = Status::NO_CONTENT;
    }
    if orig_delete_at.is_set() {
        delete_at_update(ctx, &df.device_dir, "DELETE", orig_delete_at.secs() as i64, Vec::new());
    }
    if orig_ts < ts {
        let mut meta = Meta::default();
        meta.set("X-Timestamp", ts.internal());
        meta.set("name", ctx.path.name());
        df.write_empty(&format!("{}.ts", ts.internal()), &meta, ctx.staging)
            .map_err(|e| write_failed(ctx, "DELETE", &e))?;
        container_update(ctx, &df.device_dir, "DELETE", vec![("X-Timestamp".to_string(), ts.internal())]);
    }
    let mut resp = if status == Status::NO_CONTENT { Response::new(status) } else { page(status) };
    resp = resp
        .with_header("X-Backend-Timestamp", response_ts.internal().into_bytes())
        .with_header("X-Backend-Content-Type", orig_meta.get("Content-Type").unwrap_or_default().to_vec());
    Ok(resp)
}
