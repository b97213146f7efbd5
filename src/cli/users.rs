//! `portcullis admin create` and `portcullis user ...`: accounts, passwords, sessions.

use clap::Subcommand;

use super::output::{Output, io, json, table};
use super::{Console, read_line};
use crate::clock;
use crate::db::AnyConnection;
use crate::error::AppError;
use crate::user::{self, Role};

#[derive(Debug, Subcommand)]
pub enum AdminCmd {
    /// Create an admin account; the password is read from stdin.
    Create {
        /// Login name.
        #[arg(long)]
        username: String,
        /// admin (may change everything) or readonly (may only look).
        #[arg(long, value_parser = parse_admin_role)]
        role: Role,
    },
}

/// User commands.
#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Create a user who can log in to authorize apps; the password is read from stdin.
    Create {
        /// Login name.
        #[arg(long)]
        username: String,
    },
    /// List users of every role.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Delete a user: their sessions end and every app they authorized loses access.
    Delete {
        /// Login name.
        username: String,
    },
    /// Set a new password (read from stdin) and sign the user out everywhere; every token
    /// their apps hold is revoked too unless --keep-app-access.
    ResetPassword {
        /// Login name.
        username: String,
        /// Leave the user's apps their tokens.
        #[arg(long)]
        keep_app_access: bool,
    },
    /// End every session of a user ("sign out everywhere").
    SignOut {
        /// Login name.
        username: String,
    },
}

fn parse_admin_role(s: &str) -> Result<Role, String> {
    match Role::parse(s) {
        Some(r @ (Role::Admin | Role::Readonly)) => Ok(r),
        _ => Err(format!("unknown role '{s}': use admin or readonly")),
    }
}

fn create_user(console: Console<'_>, username: &str, role: Role) -> Result<(), AppError> {
    // Checked before the password is asked for.
    let username = user::validate_username(username).map_err(AppError::Invalid)?;
    let password = read_line("Password: ")?;
    let u = crate::manage::create_user(
        console.conn,
        &console.actor,
        &username,
        &password,
        role,
        console.now,
    )?;
    writeln!(console.out, "Created {} '{}'.", u.role.as_str(), u.username).map_err(io)
}

fn user_named(conn: &mut AnyConnection, username: &str) -> Result<user::User, AppError> {
    user::store::find_by_name(conn, username)?
        .ok_or_else(|| AppError::NotFound(format!("no user named '{username}'")))
}

/// `portcullis admin create`.
pub(super) fn run_admin(cmd: AdminCmd, console: Console<'_>) -> Result<(), AppError> {
    let AdminCmd::Create { username, role } = cmd;
    create_user(console, &username, role)
}

/// `portcullis user ...`.
pub(super) fn run(cmd: UserCmd, console: Console<'_>) -> Result<(), AppError> {
    if let UserCmd::Create { username } = &cmd {
        return create_user(console, username, Role::User);
    }
    let Console {
        conn,
        out,
        now,
        actor,
        ..
    } = console;
    match cmd {
        UserCmd::Create { .. } => Ok(()),
        UserCmd::List { output } => {
            let users = user::store::list(conn)?;
            if output == Output::Json {
                return json(out, &users);
            }
            let rows = users
                .iter()
                .map(|u| {
                    vec![
                        u.username.clone(),
                        u.role.as_str().to_string(),
                        clock::human(u.created_at),
                        u.last_login_at
                            .map(clock::human)
                            .unwrap_or_else(|| "Never".into()),
                    ]
                })
                .collect();
            table(
                out,
                &["USERNAME", "ROLE", "CREATED", "LAST LOGIN"],
                rows,
                "No users.",
            )
        }
        UserCmd::Delete { username } => {
            let u = user_named(conn, &username)?;
            crate::manage::delete_user(conn, &actor, u.id, now)?;
            writeln!(out, "Deleted user '{username}'.").map_err(io)
        }
        UserCmd::ResetPassword {
            username,
            keep_app_access,
        } => {
            let u = user_named(conn, &username)?;
            let password = read_line("New password: ")?;
            crate::manage::reset_password(conn, &actor, u.id, &password, keep_app_access, now)?;
            let apps = if keep_app_access {
                "app access kept"
            } else {
                "app access revoked"
            };
            writeln!(
                out,
                "Password of '{username}' reset; signed out everywhere; {apps}."
            )
            .map_err(io)
        }
        UserCmd::SignOut { username } => {
            let u = user_named(conn, &username)?;
            let (_, ended) = crate::manage::sign_out_everywhere(conn, &actor, u.id, now)?;
            writeln!(out, "Signed '{username}' out of {ended} session(s).").map_err(io)
        }
    }
}
