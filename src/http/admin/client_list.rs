//! The clients list of the admin area: its query (search, sort, page size, page) and the
//! view of its rows and columns.

use serde::Deserialize;
use tera::Context;

use crate::client::{ClientSummary, ListQuery, PAGE_SIZES, SortKey};
use crate::error::AppError;

/// Query of the clients list.
#[derive(Deserialize, Default)]
pub struct ListParams {
    q: Option<String>,
    sort: Option<String>,
    dir: Option<String>,
    page: Option<String>,
    per_page: Option<String>,
}

impl ListParams {
    /// Unknown or malformed values fall back to the defaults (newest first, 25 per page); a
    /// page number beyond `db::paging::MAX_PAGE` is refused.
    pub(super) fn to_query(&self) -> Result<ListQuery, AppError> {
        let default = ListQuery::default();
        let sort = self
            .sort
            .as_deref()
            .and_then(SortKey::parse)
            .unwrap_or(default.sort);
        let descending = match self.dir.as_deref() {
            Some("asc") => false,
            Some("desc") => true,
            _ => sort == SortKey::Created,
        };
        let per_page = self
            .per_page
            .as_deref()
            .and_then(|p| p.parse().ok())
            .filter(|p| PAGE_SIZES.contains(p))
            .unwrap_or(default.per_page);
        let paging = crate::db::paging::Paging::parse(self.page.as_deref(), per_page)?;
        Ok(ListQuery {
            search: self
                .q
                .as_deref()
                .map(str::trim)
                .filter(|q| !q.is_empty())
                .map(|q| q.chars().take(100).collect()),
            sort,
            descending,
            page: paging.page,
            per_page,
        })
    }
}

/// A link to the list with these settings (search, sort and page size kept).
fn list_href(q: &ListQuery, sort: SortKey, descending: bool, page: i64) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    if let Some(search) = &q.search {
        s.append_pair("q", search);
    }
    s.append_pair("sort", sort.as_str());
    s.append_pair("dir", if descending { "desc" } else { "asc" });
    s.append_pair("per_page", &q.per_page.to_string());
    s.append_pair("page", &page.to_string());
    format!("/admin/clients?{}", s.finish())
}

fn column_label(key: SortKey) -> &'static str {
    match key {
        SortKey::ClientId => "Client ID",
        SortKey::Name => "Name",
        SortKey::RedirectUris => "Redirect URIs",
        SortKey::Secrets => "Secrets",
        SortKey::Status => "Status",
        SortKey::Created => "Created",
        SortKey::LastUsed => "Last used",
    }
}

fn row_json(s: &ClientSummary) -> serde_json::Value {
    let c = &s.client;
    serde_json::json!({
        "client_id": c.client_id,
        "name": c.name,
        "logo_url": c.logo_url,
        "public": c.public,
        "redirect_uris": c.redirect_uris,
        "secret_count": s.secret_count,
        "expiring_soon": s.expiring_soon,
        "all_expired": s.all_expired,
        "enabled": c.enabled,
        "created": crate::clock::date(c.created_at),
        "last_used": c.last_used_at.map_or_else(|| "Never".to_string(), crate::clock::human),
    })
}

/// Puts the list's rows, columns and paging links into the page's context.
pub(super) fn insert(ctx: &mut Context, q: &ListQuery, rows: &[ClientSummary], total: i64) {
    let pages = ((total + q.per_page - 1) / q.per_page).max(1);
    ctx.insert("q", q.search.as_deref().unwrap_or(""));
    ctx.insert("sort", q.sort.as_str());
    ctx.insert("dir", if q.descending { "desc" } else { "asc" });
    ctx.insert("per_page", &q.per_page);
    ctx.insert("page_sizes", &PAGE_SIZES);
    let columns: Vec<serde_json::Value> = SortKey::ALL
        .iter()
        .map(|&key| {
            // Clicking the sorted column reverses it; another column starts ascending
            // (dates newest first).
            let descending = if key == q.sort {
                !q.descending
            } else {
                matches!(key, SortKey::Created | SortKey::LastUsed)
            };
            serde_json::json!({
                "key": key.as_str(),
                "label": column_label(key),
                "href": list_href(q, key, descending, 1),
            })
        })
        .collect();
    ctx.insert("columns", &columns);
    ctx.insert("rows", &rows.iter().map(row_json).collect::<Vec<_>>());
    ctx.insert("total", &total);
    ctx.insert("page", &q.page);
    ctx.insert("pages", &pages);
    ctx.insert("first", &((q.page - 1) * q.per_page + 1).min(total));
    ctx.insert("last", &((q.page - 1) * q.per_page + rows.len() as i64));
    if q.page > 1 {
        ctx.insert(
            "prev_href",
            &list_href(q, q.sort, q.descending, (q.page - 1).min(pages)),
        );
    }
    if q.page < pages {
        ctx.insert("next_href", &list_href(q, q.sort, q.descending, q.page + 1));
    }
}
