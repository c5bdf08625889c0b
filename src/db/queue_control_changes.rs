//! `queue_control_changes`: the audit trail of queue controls (who changed what, when).

use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel_async::RunQueryDsl;

use super::Conn;
use super::ids::ConcertId;
use super::models::ControlChangeRow;
use super::schema::queue_control_changes;

pub async fn insert(conn: &mut Conn, row: &ControlChangeRow) -> Result<(), DieselError> {
    diesel::insert_into(queue_control_changes::table)
        .values(row)
        .execute(conn)
        .await
        .map(drop)
}

/// A room's changes, oldest first.
pub async fn of_room(
    conn: &mut Conn,
    concert: &ConcertId,
) -> Result<Vec<ControlChangeRow>, DieselError> {
    queue_control_changes::table
        .filter(queue_control_changes::concert_id.eq(concert))
        .order((
            queue_control_changes::changed_at.asc(),
            queue_control_changes::id.asc(),
        ))
        .select(ControlChangeRow::as_select())
        .load(conn)
        .await
}
