-- The totesys OLTP schema, as the real (Prisma-managed) database has it.
-- See shared/spec/totesys-source.md. Applied to an empty database by `totes source init`; the
-- keys (primary, foreign, unique) follow the data, from constraints.sql.

create type "PaymentTypeName" as enum (
    'SALES_RECEIPT', 'SALES_REFUND', 'PURCHASE_PAYMENT', 'PURCHASE_REFUND'
);
create type "TransactionType" as enum ('SALE', 'PURCHASE');

create table _prisma_migrations (
    id varchar(36),
    checksum varchar(64) not null,
    finished_at timestamptz,
    migration_name varchar(255) not null,
    logs text,
    rolled_back_at timestamptz,
    started_at timestamptz not null default now(),
    applied_steps_count integer not null default 0
);

create table address (
    address_id serial,
    address_line_1 text not null,
    address_line_2 text,
    district text,
    city text not null,
    postal_code text not null,
    country text not null,
    phone text not null,
    created_at timestamp(3) not null default current_timestamp,
    last_updated timestamp(3) not null
);

create table counterparty (
    counterparty_id serial,
    counterparty_legal_name text not null,
    legal_address_id integer not null,
    commercial_contact text,
    delivery_contact text,
    created_at timestamp(3) not null default current_timestamp,
    last_updated timestamp(3) not null
);

create table currency (
    currency_id serial,
    currency_code varchar(3) not null,
    created_at timestamp(3) not null default current_timestamp,
    last_updated timestamp(3) not null
);

create table department (
    department_id serial,
    department_name text not null,
    location text,
    manager text,
    created_at timestamp(3) not null default current_timestamp,
    last_updated timestamp(3) not null
);

create table design (
    design_id serial,
    design_name text not null,
    file_location text not null,
    file_name text not null,
    created_at timestamp(3) not null default current_timestamp,
    last_updated timestamp(3) not null
);

create table staff (
    staff_id serial,
    first_name text not null,
    last_name text not null,
    department_id integer not null,
    email_address text not null,
    created_at timestamp(3) not null default current_timestamp,
    last_updated timestamp(3) not null
);

create table payment_type (
    payment_type_id serial,
    payment_type_name "PaymentTypeName" not null,
    created_at timestamp(3) not null default current_timestamp,
    last_updated timestamp(3) not null
);

create table sales_order (
    sales_order_id serial,
    design_id integer not null,
    staff_id integer not null,
    counterparty_id integer not null,
    units_sold integer not null,
    unit_price numeric(10, 2) not null,
    currency_id integer not null,
    agreed_delivery_date text not null,
    agreed_payment_date text not null,
    agreed_delivery_location_id integer not null,
    created_at timestamp(3) not null default current_timestamp,
    last_updated timestamp(3) not null
);

create table purchase_order (
    purchase_order_id serial,
    staff_id integer not null,
    counterparty_id integer not null,
    item_code text not null,
    item_quantity integer not null,
    item_unit_price numeric(10, 2) not null,
    currency_id integer not null,
    agreed_delivery_date text not null,
    agreed_payment_date text not null,
    agreed_delivery_location_id integer not null,
    created_at timestamp(3) not null default current_timestamp,
    last_updated timestamp(3) not null
);

create table transaction (
    transaction_id serial,
    transaction_type "TransactionType" not null,
    sales_order_id integer,
    purchase_order_id integer,
    created_at timestamp(3) not null default current_timestamp,
    last_updated timestamp(3) not null
);

create table payment (
    payment_id serial,
    transaction_id integer not null,
    counterparty_id integer not null,
    payment_amount numeric(10, 2) not null,
    currency_id integer not null,
    payment_type_id integer not null,
    paid boolean not null,
    payment_date text not null,
    company_ac_number integer not null,
    counterparty_ac_number integer not null,
    created_at timestamp(3) not null default current_timestamp,
    last_updated timestamp(3) not null
);
