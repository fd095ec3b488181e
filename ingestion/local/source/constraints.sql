-- The totesys keys, added by `totes source init` after the bulk load (generate.add_keys):
-- building an index once and checking each foreign key in one pass is many times faster than
-- doing both row by row during COPY. The foreign keys are declared NOT VALID, then validated:
-- validations of different tables can run at once. The result is the same schema as declaring
-- them inline, every key validated.

alter table _prisma_migrations add primary key (id);
alter table address add primary key (address_id);
alter table counterparty add primary key (counterparty_id);
alter table currency add primary key (currency_id);
alter table department add primary key (department_id);
alter table design add primary key (design_id);
alter table staff add primary key (staff_id);
alter table payment_type add primary key (payment_type_id);
alter table sales_order add primary key (sales_order_id);
alter table purchase_order add primary key (purchase_order_id);
alter table transaction add primary key (transaction_id);
alter table payment add primary key (payment_id);

alter table counterparty add foreign key (legal_address_id)
    references address (address_id) on update cascade on delete restrict not valid;
alter table staff add foreign key (department_id)
    references department (department_id) on update cascade on delete restrict not valid;
alter table sales_order add foreign key (design_id)
    references design (design_id) on update cascade on delete restrict not valid;
alter table sales_order add foreign key (staff_id)
    references staff (staff_id) on update cascade on delete restrict not valid;
alter table sales_order add foreign key (counterparty_id)
    references counterparty (counterparty_id) on update cascade on delete restrict not valid;
alter table sales_order add foreign key (currency_id)
    references currency (currency_id) on update cascade on delete restrict not valid;
alter table sales_order add foreign key (agreed_delivery_location_id)
    references address (address_id) on update cascade on delete restrict not valid;
alter table purchase_order add foreign key (staff_id)
    references staff (staff_id) on update cascade on delete restrict not valid;
alter table purchase_order add foreign key (counterparty_id)
    references counterparty (counterparty_id) on update cascade on delete restrict not valid;
alter table purchase_order add foreign key (currency_id)
    references currency (currency_id) on update cascade on delete restrict not valid;
alter table purchase_order add foreign key (agreed_delivery_location_id)
    references address (address_id) on update cascade on delete restrict not valid;
alter table transaction add foreign key (sales_order_id)
    references sales_order (sales_order_id) on update cascade on delete set null not valid;
alter table transaction add foreign key (purchase_order_id)
    references purchase_order (purchase_order_id) on update cascade on delete set null not valid;
alter table payment add foreign key (transaction_id)
    references transaction (transaction_id) on update cascade on delete restrict not valid;
alter table payment add foreign key (counterparty_id)
    references counterparty (counterparty_id) on update cascade on delete restrict not valid;
alter table payment add foreign key (currency_id)
    references currency (currency_id) on update cascade on delete restrict not valid;
alter table payment add foreign key (payment_type_id)
    references payment_type (payment_type_id) on update cascade on delete restrict not valid;

create unique index transaction_sales_order_id_key on transaction (sales_order_id);
create unique index transaction_purchase_order_id_key on transaction (purchase_order_id);
create unique index payment_transaction_id_key on payment (transaction_id);
