//! The private-room tables (`migrations/{sqlite,postgres}/*_private_rooms.sql`): rooms,
//! members with their roles, invitations and bans, keyed by account.
//!
//! Every function takes folded names (room and account keys). Callers
//! serialise the changes of one room with its lock (see `locks`), so a
//! check followed by a write here sees no other change to that room in
//! between; the statements that must be atomic run in one transaction.

use chatd_storage::{is_unique_violation, now_ms, Database, StorageError};
use sqlx::Row;

/// A member's standing in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Member,
    Moderator,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Moderator => "moderator",
            Role::Member => "member",
        }
    }

    fn parse(s: &str) -> Role {
        match s {
            "owner" => Role::Owner,
            "moderator" => Role::Moderator,
            _ => Role::Member,
        }
    }
}

/// A private room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRow {
    pub id: i64,
    /// As its creator spelled it.
    pub name: String,
    pub topic: Option<String>,
}

/// A pending invitation, as listed for the invitee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    pub room: String,
    /// Display name of who invited, or their folded name if the account is gone.
    pub from: String,
    pub at: i64,
}

/// Everything known about a room, for `room_info`.
#[derive(Debug, Clone, Default)]
pub struct RoomDetails {
    /// Display names with roles, by name.
    pub members: Vec<(String, Role)>,
    pub invited: Vec<String>,
    pub banned: Vec<String>,
}

/// Why creating a room failed.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("the room name is taken")]
    NameTaken,
    #[error("the owner has reached the limit of rooms")]
    TooManyRooms,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The private rooms in a database.
#[derive(Clone, Debug)]
pub struct RoomStore {
    db: Database,
}

impl RoomStore {
    pub fn new(db: Database) -> RoomStore {
        RoomStore { db }
    }

    fn err(&self, e: sqlx::Error) -> StorageError {
        self.db.query_error(e)
    }

    /// The folded names of every private room.
    pub async fn all_keys(&self) -> Result<Vec<String>, StorageError> {
        sqlx::query_scalar("SELECT name_key FROM private_rooms")
            .fetch_all(self.db.pool())
            .await
            .map_err(|e| self.err(e))
    }

    pub async fn find_room(&self, room_key: &str) -> Result<Option<RoomRow>, StorageError> {
        let row = sqlx::query("SELECT id, name, topic FROM private_rooms WHERE name_key = $1")
            .bind(room_key)
            .fetch_optional(self.db.pool())
            .await
            .map_err(|e| self.err(e))?;
        row.map(|row| room_from_row(&row))
            .transpose()
            .map_err(|e| self.err(e))
    }

    /// The display name of an account, if it exists.
    pub async fn account_name(&self, account_key: &str) -> Result<Option<String>, StorageError> {
        sqlx::query_scalar("SELECT name FROM accounts WHERE name_key = $1")
            .bind(account_key)
            .fetch_optional(self.db.pool())
            .await
            .map_err(|e| self.err(e))
    }

    pub async fn role_of(
        &self,
        room: i64,
        account_key: &str,
    ) -> Result<Option<Role>, StorageError> {
        let role: Option<String> = sqlx::query_scalar(
            "SELECT role FROM private_room_members WHERE room_id = $1 AND account_key = $2",
        )
        .bind(room)
        .bind(account_key)
        .fetch_optional(self.db.pool())
        .await
        .map_err(|e| self.err(e))?;
        Ok(role.as_deref().map(Role::parse))
    }

    /// The newest message id stored when `account_key` became a member:
    /// what it may read of the room's history starts after it.
    pub async fn member_since(
        &self,
        room: i64,
        account_key: &str,
    ) -> Result<Option<u64>, StorageError> {
        let since: Option<i64> = sqlx::query_scalar(
            "SELECT since_msg_id FROM private_room_members WHERE room_id = $1 AND account_key = $2",
        )
        .bind(room)
        .bind(account_key)
        .fetch_optional(self.db.pool())
        .await
        .map_err(|e| self.err(e))?;
        Ok(since.map(|s| s.max(0) as u64))
    }

    pub async fn is_invited(&self, room: i64, account_key: &str) -> Result<bool, StorageError> {
        self.exists(
            "SELECT 1 FROM private_room_invitations WHERE room_id = $1 AND account_key = $2",
            room,
            account_key,
        )
        .await
    }

    pub async fn is_banned(&self, room: i64, account_key: &str) -> Result<bool, StorageError> {
        self.exists(
            "SELECT 1 FROM private_room_bans WHERE room_id = $1 AND account_key = $2",
            room,
            account_key,
        )
        .await
    }

    async fn exists(&self, sql: &'static str, room: i64, key: &str) -> Result<bool, StorageError> {
        let found: Option<i64> = sqlx::query_scalar(sql)
            .bind(room)
            .bind(key)
            .fetch_optional(self.db.pool())
            .await
            .map_err(|e| self.err(e))?;
        Ok(found.is_some())
    }

    /// Members plus pending invitations: what `max_members` bounds.
    pub async fn seats_taken(&self, room: i64) -> Result<i64, StorageError> {
        sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM private_room_members WHERE room_id = $1) \
                  + (SELECT count(*) FROM private_room_invitations WHERE room_id = $1)",
        )
        .bind(room)
        .fetch_one(self.db.pool())
        .await
        .map_err(|e| self.err(e))
    }

    /// Invitations waiting for an account (bounds invitation spam).
    pub async fn pending_invitations(&self, account_key: &str) -> Result<i64, StorageError> {
        sqlx::query_scalar("SELECT count(*) FROM private_room_invitations WHERE account_key = $1")
            .bind(account_key)
            .fetch_one(self.db.pool())
            .await
            .map_err(|e| self.err(e))
    }

    /// Creates a room owned by `owner_key`, unless the owner already owns
    /// `max_owned` rooms (checked in the same statement, so concurrent
    /// creations cannot exceed it).
    pub async fn create_room(
        &self,
        name: &str,
        room_key: &str,
        owner_key: &str,
        topic: Option<&str>,
        max_owned: u32,
    ) -> Result<RoomRow, CreateError> {
        let now = now_ms();
        let mut tx = self.db.pool().begin().await.map_err(|e| self.err(e))?;
        let inserted: Result<Option<i64>, _> = sqlx::query_scalar(
            "INSERT INTO private_rooms (name, name_key, topic, created_at) \
             SELECT $1, $2, $3, $4 WHERE (SELECT count(*) FROM private_room_members \
                                      WHERE account_key = $5 AND role = 'owner') < $6 \
             RETURNING id",
        )
        .bind(name)
        .bind(room_key)
        .bind(topic)
        .bind(now)
        .bind(owner_key)
        .bind(i64::from(max_owned))
        .fetch_optional(&mut *tx)
        .await;
        let id = match inserted {
            Ok(None) => return Err(CreateError::TooManyRooms),
            Ok(Some(id)) => id,
            Err(e) if is_unique_violation(&e) => return Err(CreateError::NameTaken),
            Err(e) => return Err(self.err(e).into()),
        };
        sqlx::query(
            "INSERT INTO private_room_members (room_id, account_key, role, since, since_msg_id) VALUES ($1, $2, 'owner', $3, (SELECT coalesce(max(msg_id), 0) FROM messages))",
        )
        .bind(id)
        .bind(owner_key)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(RoomRow {
            id,
            name: name.to_string(),
            topic: topic.map(str::to_string),
        })
    }

    /// Records an invitation (again: keeps the first). The account must exist.
    pub async fn invite(&self, room: i64, account_key: &str, by: &str) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO private_room_invitations (room_id, account_key, invited_by, invited_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(room)
        .bind(account_key)
        .bind(by)
        .bind(now_ms())
        .execute(self.db.pool())
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Deletes an invitation; whether there was one.
    pub async fn remove_invitation(
        &self,
        room: i64,
        account_key: &str,
    ) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "DELETE FROM private_room_invitations WHERE room_id = $1 AND account_key = $2",
        )
        .bind(room)
        .bind(account_key)
        .execute(self.db.pool())
        .await
        .map_err(|e| self.err(e))?;
        Ok(done.rows_affected() > 0)
    }

    /// Turns an invitation into a membership; whether there was one.
    /// Turns an invitation into a membership; the invitation (who, when)
    /// if there was one, to put back with [`Store::unaccept`] if entering
    /// the room then fails.
    pub async fn accept(
        &self,
        room: i64,
        account_key: &str,
    ) -> Result<Option<(String, i64)>, StorageError> {
        let mut tx = self.db.pool().begin().await.map_err(|e| self.err(e))?;
        let invitation: Option<(String, i64)> = sqlx::query_as(
            "DELETE FROM private_room_invitations WHERE room_id = $1 AND account_key = $2 RETURNING invited_by, invited_at",
        )
        .bind(room)
        .bind(account_key)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        if invitation.is_none() {
            return Ok(None);
        }
        sqlx::query(
            "INSERT INTO private_room_members (room_id, account_key, role, since, since_msg_id) VALUES ($1, $2, 'member', $3, (SELECT coalesce(max(msg_id), 0) FROM messages))",
        )
        .bind(room)
        .bind(account_key)
        .bind(now_ms())
        .execute(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(invitation)
    }

    /// Undoes [`Store::accept`]: the member is invited again, as before.
    pub async fn unaccept(
        &self,
        room: i64,
        account_key: &str,
        invitation: &(String, i64),
    ) -> Result<(), StorageError> {
        let mut tx = self.db.pool().begin().await.map_err(|e| self.err(e))?;
        sqlx::query(
            "DELETE FROM private_room_members WHERE room_id = $1 AND account_key = $2 AND role = 'member'",
        )
        .bind(room)
        .bind(account_key)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        sqlx::query(
            "INSERT INTO private_room_invitations (room_id, account_key, invited_by, invited_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
        )
        .bind(room)
        .bind(account_key)
        .bind(&invitation.0)
        .bind(invitation.1)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))
    }

    /// Ends a membership; whether there was one.
    pub async fn remove_member(&self, room: i64, account_key: &str) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "DELETE FROM private_room_members WHERE room_id = $1 AND account_key = $2 AND role <> 'owner'",
        )
        .bind(room)
        .bind(account_key)
        .execute(self.db.pool())
        .await
        .map_err(|e| self.err(e))?;
        Ok(done.rows_affected() > 0)
    }

    /// Bans an account: ends its membership and invitation, in one
    /// transaction. Never the owner (the caller checks).
    pub async fn ban(
        &self,
        room: i64,
        account_key: &str,
        by: &str,
        reason: Option<&str>,
    ) -> Result<(), StorageError> {
        let mut tx = self.db.pool().begin().await.map_err(|e| self.err(e))?;
        for sql in [
            "DELETE FROM private_room_members WHERE room_id = $1 AND account_key = $2 AND role <> 'owner'",
            "DELETE FROM private_room_invitations WHERE room_id = $1 AND account_key = $2",
        ] {
            sqlx::query(sql)
                .bind(room)
                .bind(account_key)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        sqlx::query(
            "INSERT INTO private_room_bans (room_id, account_key, banned_by, reason, banned_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (room_id, account_key) DO UPDATE SET banned_by = excluded.banned_by, \
             reason = excluded.reason, banned_at = excluded.banned_at",
        )
        .bind(room)
        .bind(account_key)
        .bind(by)
        .bind(reason)
        .bind(now_ms())
        .execute(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))
    }

    /// Lifts a ban; whether there was one.
    pub async fn unban(&self, room: i64, account_key: &str) -> Result<bool, StorageError> {
        let done =
            sqlx::query("DELETE FROM private_room_bans WHERE room_id = $1 AND account_key = $2")
                .bind(room)
                .bind(account_key)
                .execute(self.db.pool())
                .await
                .map_err(|e| self.err(e))?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn set_topic(&self, room: i64, topic: Option<&str>) -> Result<(), StorageError> {
        sqlx::query("UPDATE private_rooms SET topic = $1 WHERE id = $2")
            .bind(topic)
            .bind(room)
            .execute(self.db.pool())
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Makes a member a moderator or a plain member again (never touches
    /// the owner).
    pub async fn set_role(
        &self,
        room: i64,
        account_key: &str,
        role: Role,
    ) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "UPDATE private_room_members SET role = $1 \
             WHERE room_id = $2 AND account_key = $3 AND role <> 'owner'",
        )
        .bind(role.as_str())
        .bind(room)
        .bind(account_key)
        .execute(self.db.pool())
        .await
        .map_err(|e| self.err(e))?;
        Ok(done.rows_affected() > 0)
    }

    /// Hands the room to another member; the previous owner stays as a
    /// moderator. One transaction, so the room always has one owner.
    pub async fn transfer(&self, room: i64, new_owner_key: &str) -> Result<(), StorageError> {
        let mut tx = self.db.pool().begin().await.map_err(|e| self.err(e))?;
        sqlx::query("UPDATE private_room_members SET role = 'moderator' WHERE room_id = $1 AND role = 'owner'")
            .bind(room)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        sqlx::query(
            "UPDATE private_room_members SET role = 'owner' WHERE room_id = $1 AND account_key = $2",
        )
        .bind(room)
        .bind(new_owner_key)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))
    }

    /// Deletes a room with its members, invitations and bans.
    pub async fn delete_room(&self, room: i64) -> Result<(), StorageError> {
        sqlx::query("DELETE FROM private_rooms WHERE id = $1")
            .bind(room)
            .execute(self.db.pool())
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The rooms an account is a member of, by name.
    pub async fn rooms_of(&self, account_key: &str) -> Result<Vec<(RoomRow, Role)>, StorageError> {
        let rows = sqlx::query(
            "SELECT r.id, r.name, r.topic, m.role FROM private_room_members m \
             JOIN private_rooms r ON r.id = m.room_id \
             WHERE m.account_key = $1 ORDER BY r.name_key",
        )
        .bind(account_key)
        .fetch_all(self.db.pool())
        .await
        .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|row| {
                let role: String = row.try_get("role")?;
                Ok((room_from_row(row)?, Role::parse(&role)))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| self.err(e))
    }

    /// The invitations waiting for an account, oldest first.
    pub async fn invitations_of(&self, account_key: &str) -> Result<Vec<Invitation>, StorageError> {
        let rows = sqlx::query(
            "SELECT r.name AS room, coalesce(a.name, i.invited_by) AS from_name, i.invited_at \
             FROM private_room_invitations i \
             JOIN private_rooms r ON r.id = i.room_id \
             LEFT JOIN accounts a ON a.name_key = i.invited_by \
             WHERE i.account_key = $1 ORDER BY i.invited_at, r.name_key",
        )
        .bind(account_key)
        .fetch_all(self.db.pool())
        .await
        .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|row| {
                Ok(Invitation {
                    room: row.try_get("room")?,
                    from: row.try_get("from_name")?,
                    at: row.try_get("invited_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| self.err(e))
    }

    /// Members (with roles), invitees and banned accounts of a room.
    pub async fn details(&self, room: i64) -> Result<RoomDetails, StorageError> {
        let members = sqlx::query(
            "SELECT a.name, m.role FROM private_room_members m \
             JOIN accounts a ON a.name_key = m.account_key \
             WHERE m.room_id = $1 ORDER BY m.account_key",
        )
        .bind(room)
        .fetch_all(self.db.pool())
        .await
        .map_err(|e| self.err(e))?
        .iter()
        .map(|row| {
            let role: String = row.try_get("role")?;
            Ok((row.try_get("name")?, Role::parse(&role)))
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(|e| self.err(e))?;
        let names = |sql: &'static str| async move {
            sqlx::query_scalar::<_, String>(sql)
                .bind(room)
                .fetch_all(self.db.pool())
                .await
                .map_err(|e| self.err(e))
        };
        Ok(RoomDetails {
            members,
            invited: names(
                "SELECT a.name FROM private_room_invitations i \
                 JOIN accounts a ON a.name_key = i.account_key WHERE i.room_id = $1 ORDER BY i.account_key",
            )
            .await?,
            banned: names(
                "SELECT a.name FROM private_room_bans b \
                 JOIN accounts a ON a.name_key = b.account_key WHERE b.room_id = $1 ORDER BY b.account_key",
            )
            .await?,
        })
    }
}

fn room_from_row(row: &sqlx::any::AnyRow) -> Result<RoomRow, sqlx::Error> {
    Ok(RoomRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        topic: row.try_get("topic")?,
    })
}
