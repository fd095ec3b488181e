-- The totesys OLTP schema, as the real (Prisma-managed) database has it.
-- See shared/spec/totesys-source.md. Applied to an empty database by `totes source init`.

create type "PaymentTypeName" as enum (
    'SALES_RECEIPT', 'SALES_REFUND', 'PURCHASE_PAYMENT', 'PURCHASE_REFUND'
);
create type "TransactionType" as enum ('SALE', 'PURCHASE');

create table _prisma_migrations (
    id varchar(36) primary key,
    checksum varchar(64) not null,
    finished_at timestamptz,
    migration_name varchar(255) not null,
    logs text,
    rolled_back_at timestamptz,
    started_at timestamptz not null default now(),
    applied_steps_count integer not null default 0
);

create table address (
    address_id serial primary key,
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
    counterparty_id serial primary key,
    counterparty_legal_name text not null,
    legal_address_id integer not null
        references address (address_id) on update cascade on delete restrict,
    commercial_contact text,
    delivery_contact text,
    created_at timestamp(3) not null default current_timestamp,
    last_updated timestamp(3) not null
);

create table currency (
    currency_id serial primary key,
    currency_code varchar(3) not null,
    created_at timestamp(3) not null default current_timestamp,
    last_updated timestamp(3) not null
);

create table department (
    department_id serial primary key,
    department_name text not null,
    location text,
    manager text,
    created_at timestamp(3) not null default current_timestamp,
    last_updated timestamp(3) not null
);

create table design (
    design_id serial primary key,
    design_name text not null,
    file_location text not null,
    file_name text not null,
    created_at timestamp(3) not null default current_timestamp,
    last_updated timestamp(3) not null
);

create table staff (
    staff_id serial primary key,
    first_name text not null,
    last_name text not null,
    department_id integer not null
        references department (department_id) on update cascade on delete restrict,
    email_address text not null,
    created_at timestamp(3) not null default current_timestamp,
    last_updated timestamp(3) not null
);

create table payment_type (
    payment_type_id serial primary key,
    payment_type_name "PaymentTypeName" not null,
    created_at timestamp(3) not null default current_timestamp,
    last_updated timestamp(3) not null
);

create table sales_order (
    sales_order_id serial primary key,
    design_id integer not null
        references design (design_id) on update cascade on delete restrict,
    staff_id integer not null
        references staff (staff_id) on update cascade on delete restrict,
    counterparty_id integer not null
        references counterparty (counterparty_id) on update cascade on delete restrict,
    units_sold integer not null,
    unit_price numeric(10, 2) not null,
    currency_id integer not null
        references currency (currency_id) on update cascade on delete restrict,
    agreed_delivery_date text not null,
    agreed_payment_date text not null,
    agreed_delivery_location_id integer not null
        references address (address_id) on update cascade on delete restrict,
    created_at timestamp(3) not null default current_timestamp,
    last_updated timestamp(3) not null
);

create table purchase_order (
    purchase_order_id serial primary key,
    staff_id integer not null
        references staff (staff_id) on update cascade on delete restrict,
    counterparty_id integer not null
        references counterparty (counterparty_id) on update cascade on delete restrict,
    item_code text not null,
    item_quantity integer not null,
    item_unit_price numeric(10, 2) not null,
    currency_id integer not null
        references currency (currency_id) on update cascade on delete restrict,
    agreed_delivery_date text not null,
    agreed_payment_date text not null,
    agreed_delivery_location_id integer not null
        references address (address_id) on update cascade on delete restrict,
    created_at timestamp(3) not null default current_timestamp,
    last_updated timestamp(3) not null
);

create table transaction (
    transaction_id serial primary key,
    transaction_type "TransactionType" not null,
    sales_order_id integer
        references sales_order (sales_order_id) on update cascade on delete set null,
    purchase_order_id integer
        references purchase_order (purchase_order_id) on update cascade on delete set null,
    created_at timestamp(3) not null default current_timestamp,
    last_updated timestamp(3) not null
);
create unique index transaction_sales_order_id_key on transaction (sales_order_id);
create unique index transaction_purchase_order_id_key on transaction (purchase_order_id);

create table payment (
    payment_id serial primary key,
    transaction_id integer not null
        references transaction (transaction_id) on update cascade on delete restrict,
    counterparty_id integer not null
        references counterparty (counterparty_id) on update cascade on delete restrict,
    payment_amount numeric(10, 2) not null,
    currency_id integer not null
        references currency (currency_id) on update cascade on delete restrict,
    payment_type_id integer not null
        references payment_type (payment_type_id) on update cascade on delete restrict,
    paid boolean not null,
    payment_date text not null,
    company_ac_number integer not null,
    counterparty_ac_number integer not null,
    created_at timestamp(3) not null default current_timestamp,
    last_updated timestamp(3) not null
);
create unique index payment_transaction_id_key on payment (transaction_id);
