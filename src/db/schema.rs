// @generated-style: matches migrations/sqlite and migrations/postgres (same tables, same types).

diesel::table! {
    clients (id) {
        id -> BigInt,
        client_id -> Text,
        name -> Text,
        name_lower -> Text,
        description -> Text,
        logo_url -> Nullable<Text>,
        public -> Bool,
        enabled -> Bool,
        allowed_scopes -> Text,
        allowed_grant_types -> Text,
        access_token_ttl -> Nullable<BigInt>,
        refresh_token_ttl -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
        ip_allowlist -> Text,
        rate_limit_per_minute -> Nullable<BigInt>,
        token_endpoint_auth_method -> Nullable<Text>,
        jwks -> Nullable<Text>,
        hmac_key -> Nullable<Text>,
        loopback_any_port -> Bool,
    }
}

diesel::table! {
    redirect_uris (id) {
        id -> BigInt,
        client_id -> BigInt,
        uri -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    client_secrets (id) {
        id -> BigInt,
        client_id -> BigInt,
        description -> Text,
        hash -> Text,
        hint -> Text,
        expires_at -> Nullable<BigInt>,
        created_at -> BigInt,
    }
}

diesel::table! {
    users (id) {
        id -> BigInt,
        username -> Text,
        password_hash -> Text,
        role -> Text,
        created_at -> BigInt,
        last_login_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    signing_keys (id) {
        id -> BigInt,
        kid -> Text,
        alg -> Text,
        private_key -> Text,
        created_at -> BigInt,
        retired_at -> Nullable<BigInt>,
        activates_at -> BigInt,
    }
}

diesel::table! {
    grants (id) {
        id -> BigInt,
        code_hash -> Text,
        client_id -> BigInt,
        user_id -> BigInt,
        redirect_uri -> Text,
        redirect_uri_given -> Bool,
        scope -> Text,
        pkce -> Nullable<Text>,
        code_expires_at -> BigInt,
        redeemed_at -> Nullable<BigInt>,
        access_jti -> Nullable<Text>,
        access_expires_at -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
        expires_at -> BigInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> BigInt,
        token_hash -> Text,
        grant_id -> BigInt,
        scope -> Text,
        access_jti -> Text,
        access_expires_at -> BigInt,
        expires_at -> BigInt,
        rotated_at -> Nullable<BigInt>,
        created_at -> BigInt,
    }
}

diesel::table! {
    revoked_tokens (jti) {
        jti -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    consents (user_id, client_id) {
        user_id -> BigInt,
        client_id -> BigInt,
        scope -> Text,
        granted_at -> BigInt,
    }
}

diesel::table! {
    server_secrets (name) {
        name -> Text,
        value -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    sessions (id_hash) {
        id_hash -> Text,
        user_id -> BigInt,
        state -> Text,
        created_at -> BigInt,
        last_seen_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(redirect_uris -> clients (client_id));
diesel::joinable!(client_secrets -> clients (client_id));
diesel::joinable!(grants -> clients (client_id));
diesel::joinable!(grants -> users (user_id));
diesel::joinable!(refresh_tokens -> grants (grant_id));
diesel::joinable!(consents -> clients (client_id));
diesel::joinable!(consents -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    clients,
    redirect_uris,
    client_secrets,
    users,
    signing_keys,
    grants,
    refresh_tokens,
    revoked_tokens,
    consents,
    server_secrets,
    sessions
);

diesel::table! {
    cache_generation (name) {
        name -> Text,
        value -> BigInt,
    }
}

diesel::table! {
    audit_events (id) {
        id -> BigInt,
        at -> BigInt,
        actor -> Text,
        action -> Text,
        client_id -> Nullable<Text>,
        target -> Text,
        details -> Text,
        remote_addr -> Text,
    }
}

diesel::table! {
    /// When a client last authenticated (migration 000015: narrow, written by the usage flush).
    client_last_used (client_id) {
        client_id -> BigInt,
        at -> BigInt,
    }
}

diesel::table! {
    /// When a secret was last used (migration 000015).
    secret_last_used (secret_id) {
        secret_id -> BigInt,
        at -> BigInt,
    }
}

diesel::table! {
    /// Which client each change moved `cache_generation` for (migration 000016).
    client_changes (generation) {
        generation -> BigInt,
        client_pk -> BigInt,
    }
}

diesel::table! {
    token_usage (client_id, day) {
        client_id -> BigInt,
        day -> BigInt,
        count -> BigInt,
    }
}

diesel::table! {
    client_assertion_jtis (client_id, jti) {
        client_id -> BigInt,
        jti -> Text,
        expires_at -> BigInt,
    }
}
