// Diesel table definitions, matching migrations/. Regenerate with `diesel print-schema` (see
// diesel.toml) after changing a migration. Drift shows up in the integration suite, whose
// queries run against freshly migrated databases.

diesel::table! {
    users (id) {
        id -> Char,
        username -> Varchar,
        email -> Varchar,
        password_hash -> Varchar,
        balance -> Decimal,
        created_at -> Datetime,
        role -> Varchar,
    }
}

diesel::table! {
    concerts (id) {
        id -> Char,
        title -> Varchar,
        venue -> Varchar,
        price -> Decimal,
        created_at -> Datetime,
        description -> Nullable<Text>,
        seats_per_date -> Smallint,
        seats_per_row -> Nullable<Smallint>,
        max_tickets_per_fan -> Nullable<Smallint>,
    }
}

diesel::table! {
    price_tiers (concert_id, from_seat) {
        concert_id -> Char,
        from_seat -> Smallint,
        to_seat -> Smallint,
        name -> Varchar,
        price -> Decimal,
    }
}

diesel::table! {
    queue_control_changes (id) {
        id -> Char,
        concert_id -> Char,
        changed_by -> Char,
        changed_at -> Datetime,
        paused -> Nullable<Bool>,
        admit_per_sec -> Nullable<Unsigned<Integer>>,
        active_limit -> Nullable<Unsigned<Integer>>,
    }
}

diesel::table! {
    sales (concert_id) {
        concert_id -> Char,
        prequeue_opens_at -> Nullable<Datetime>,
        opens_at -> Nullable<Datetime>,
        seed -> Char,
        seed_commitment -> Char,
        prequeued -> Bigint,
        drawn_at -> Nullable<Datetime>,
        scheduled_by -> Char,
        scheduled_at -> Datetime,
    }
}

diesel::table! {
    concert_dates (concert_id, date) {
        concert_id -> Char,
        date -> Date,
        waitlist_issued -> Bigint,
        waitlist_served -> Bigint,
        waitlist_waiting -> Integer,
    }
}

diesel::table! {
    waitlist_entries (id) {
        id -> Char,
        concert_id -> Char,
        date -> Date,
        user_id -> Char,
        seq -> Bigint,
        seat_count -> Smallint,
        status -> Varchar,
        order_id -> Nullable<Char>,
        offer_expires_at -> Nullable<Datetime>,
        created_at -> Datetime,
        updated_at -> Datetime,
    }
}

diesel::table! {
    seats (concert_id, date, number) {
        concert_id -> Char,
        date -> Date,
        number -> Smallint,
        seat_row -> Smallint,
        price -> Decimal,
        status -> Varchar,
        held_by -> Nullable<Char>,
        held_until -> Nullable<Datetime>,
        reservation_id -> Nullable<Char>,
        updated_at -> Datetime,
        tier -> Varchar,
    }
}

diesel::table! {
    orders (id) {
        id -> Char,
        user_id -> Char,
        concert_id -> Char,
        date -> Date,
        status -> Varchar,
        source -> Varchar,
        total -> Decimal,
        held_until -> Datetime,
        paid_at -> Nullable<Datetime>,
        created_at -> Datetime,
        updated_at -> Datetime,
    }
}

diesel::table! {
    reservations (id) {
        id -> Char,
        order_id -> Char,
        user_id -> Char,
        concert_id -> Char,
        date -> Date,
        seat_number -> Smallint,
        price -> Decimal,
        tier -> Varchar,
        status -> Varchar,
        held_until -> Datetime,
        created_at -> Datetime,
        updated_at -> Datetime,
    }
}

diesel::table! {
    wallet_transactions (id) {
        id -> Char,
        user_id -> Char,
        kind -> Varchar,
        amount -> Decimal,
        balance_after -> Decimal,
        reservation_id -> Nullable<Char>,
        order_id -> Nullable<Char>,
        created_at -> Datetime,
    }
}

diesel::table! {
    payments (id) {
        id -> Char,
        user_id -> Char,
        order_id -> Char,
        wallet_transaction_id -> Char,
        amount -> Decimal,
        paid_at -> Datetime,
    }
}

diesel::table! {
    idempotency_keys (user_id, idem_key) {
        user_id -> Char,
        idem_key -> Varchar,
        operation -> Varchar,
        fingerprint -> Varchar,
        result_id -> Char,
        created_at -> Datetime,
    }
}

diesel::table! {
    queue_rooms (concert_id) {
        concert_id -> Char,
        issued -> Bigint,
        admitted_seq -> Bigint,
        admit_clock -> Nullable<Datetime>,
        last_tick_at -> Nullable<Datetime>,
        pow_difficulty -> Nullable<Unsigned<Tinyint>>,
        paused -> Bool,
        admit_per_sec -> Nullable<Unsigned<Integer>>,
        active_limit -> Nullable<Unsigned<Integer>>,
        sold_out -> Bool,
        admitted_total -> Bigint,
        abandoned_total -> Bigint,
        rate_sample_at -> Nullable<Datetime>,
        rate_sample_total -> Bigint,
        rate_prior -> Nullable<Double>,
        observed_rate -> Nullable<Double>,
        active_count -> Integer,
        first_deadline -> Nullable<Datetime>,
        last_deadline -> Nullable<Datetime>,
    }
}

diesel::table! {
    queue_challenges_used (id) {
        id -> Char,
        expires_at -> Datetime,
    }
}

diesel::table! {
    queue_tickets (id) {
        id -> Char,
        token -> Char,
        user_id -> Char,
        concert_id -> Char,
        seq -> Bigint,
        status -> Varchar,
        last_seen_at -> Datetime,
        activated_at -> Nullable<Datetime>,
        expires_at -> Nullable<Datetime>,
        created_at -> Datetime,
        updated_at -> Datetime,
    }
}

diesel::table! {
    sign_in_failures (subject) {
        subject -> Char,
        failures -> Unsigned<Integer>,
        locked_until -> Nullable<Datetime>,
        updated_at -> Datetime,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    users,
    sign_in_failures,
    concerts,
    concert_dates,
    price_tiers,
    queue_control_changes,
    sales,
    seats,
    reservations,
    orders,
    waitlist_entries,
    wallet_transactions,
    payments,
    idempotency_keys,
    queue_challenges_used,
    queue_rooms,
    queue_tickets,
);
