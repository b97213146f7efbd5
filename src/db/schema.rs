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
        last_used_at -> Nullable<BigInt>,
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
        last_used_at -> Nullable<BigInt>,
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
    }
}

diesel::joinable!(redirect_uris -> clients (client_id));
diesel::joinable!(client_secrets -> clients (client_id));

diesel::allow_tables_to_appear_in_same_query!(
    clients,
    redirect_uris,
    client_secrets,
    users,
    signing_keys
);
