"""What sqlgate + MariaDB (10.5 or later; the gateway's private server is
10.11) support, for SQLAlchemy's compliance suite (sqlalchemy.testing.suite).

SuiteRequirements' defaults are conservative (many features closed); here
each feature MariaDB has is opened, and each one that stays closed says why:
the gateway's rules (README.md: no SAVEPOINT/XA, session state does not
outlive a call, the account owns one database) or MariaDB itself. Nothing is
closed only to hide a failure; failures that remain are listed in
clients/python/README.md.
"""
from sqlalchemy.testing import exclusions
from sqlalchemy.testing.requirements import SuiteRequirements

open_ = exclusions.open
closed = exclusions.closed


def _mariadb_at_least(*version):
    def check(config):
        dialect = config.db.dialect
        return dialect._is_mariadb and dialect._mariadb_normalized_version_info >= version

    return exclusions.only_if(check, f"MariaDB >= {'.'.join(map(str, version))}")


class Requirements(SuiteRequirements):
    # ------------------------------------------------------------- gateway rules

    @property
    def savepoints(self):
        # The gateway refuses SAVEPOINT (INVALID_REQUEST): a transaction is
        # one unit, rolled back and rerun whole. The dialect raises
        # NotImplementedError for begin_nested().
        return closed()

    @property
    def two_phase_transactions(self):
        # The gateway refuses XA.
        return closed()

    @property
    def schemas(self):
        # The gateway's database account has privileges on its one database
        # only: there is no "test_schema" and it cannot create one (CREATE
        # DATABASE is denied, 1044), and USE is refused.
        return closed()

    @property
    def schema_create_delete(self):
        # Same: CREATE/DROP DATABASE (SCHEMA) are denied to the account.
        return closed()

    @property
    def temporary_tables(self):
        # A temporary table lives in a database session; the gateway resets
        # (COM_RESET_CONNECTION) a pooled connection after every autocommit
        # call and after every transaction, so a temporary table is gone
        # before the next call (the suite creates one, then uses it from
        # other connections and calls).
        return closed()

    @property
    def temp_table_reflection(self):
        return self.temporary_tables

    @property
    def temp_table_comment_reflection(self):
        return self.temporary_tables

    @property
    def has_temp_table(self):
        return self.temporary_tables

    @property
    def temp_table_names(self):
        # MySQL/MariaDB cannot list temporary tables either.
        return closed()

    @property
    def temporary_views(self):
        return closed()  # MariaDB has no temporary views

    # ------------------------------------------------------------ transactions

    @property
    def isolation_level(self):
        # Per transaction (TransactionOptions.isolation of the inline begin).
        return open_()

    # get_isolation_levels(): SuiteRequirements' default asks the dialect
    # (the four levels + AUTOCOMMIT; the server's default, REPEATABLE READ).

    @property
    def autocommit(self):
        return open_()  # the driver's autocommit mode: plain autocommit Execute calls

    @property
    def skip_autocommit_rollback(self):
        return open_()  # the dialect reports the driver's autocommit (detect_autocommit_setting)

    @property
    def independent_connections(self):
        return open_()

    # --------------------------------------------------------------------- DDL

    @property
    def table_ddl_if_exists(self):
        return open_()

    @property
    def index_ddl_if_exists(self):
        return open_()  # CREATE/DROP INDEX IF [NOT] EXISTS: MariaDB, not MySQL

    @property
    def unbounded_varchar(self):
        return closed()  # MySQL/MariaDB need a length for VARCHAR

    @property
    def views(self):
        return open_()

    @property
    def server_defaults(self):
        return open_()

    @property
    def expression_server_defaults(self):
        return open_()  # DEFAULT (expression): MariaDB 10.2.1+

    @property
    def computed_columns(self):
        return open_()

    @property
    def computed_columns_stored(self):
        return open_()

    @property
    def computed_columns_virtual(self):
        return open_()

    @property
    def computed_columns_reflect_persisted(self):
        return open_()

    @property
    def computed_columns_default_persisted(self):
        # Computed() without persisted= makes a VIRTUAL column in MariaDB
        # (reflected as persisted=False).
        return closed()

    @property
    def identity_columns(self):
        return closed()  # MariaDB has AUTO_INCREMENT, not GENERATED AS IDENTITY

    @property
    def identity_columns_standard(self):
        return closed()

    @property
    def uuid_data_type(self):
        return _mariadb_at_least(10, 7)  # the UUID column type

    @property
    def nvarchar_types(self):
        return open_()

    @property
    def unicode_ddl(self):
        return open_()

    # -------------------------------------------------------------- reflection

    @property
    def reflect_table_options(self):
        return open_()

    @property
    def comment_reflection(self):
        return open_()

    @property
    def comment_reflection_full_unicode(self):
        # MariaDB keeps comments in utf8mb3: characters outside the BMP
        # (emoji) come back as "?".
        return closed()

    @property
    def check_constraint_reflection(self):
        return open_()  # MariaDB 10.2+: information_schema.CHECK_CONSTRAINTS

    @property
    def inline_check_constraint_reflection(self):
        # MariaDB rejects a named CHECK in a column definition (`a INTEGER
        # CONSTRAINT name CHECK (...)`: syntax error 1064), and keeps an
        # unnamed one in the column's definition in SHOW CREATE TABLE, where
        # SQLAlchemy's MySQL reflection does not look for it.
        return closed()

    @property
    def foreign_keys_reflect_as_index(self):
        return open_()  # InnoDB creates an index for each foreign key

    @property
    def unique_index_reflect_as_unique_constraints(self):
        return open_()  # a unique index is a unique constraint in MySQL/MariaDB

    @property
    def unique_constraints_reflect_as_index(self):
        return open_()

    @property
    def foreign_key_constraint_name_reflection(self):
        return _mariadb_at_least(10, 5)

    @property
    def foreign_key_constraint_option_reflection_ondelete(self):
        return open_()

    @property
    def foreign_key_constraint_option_reflection_onupdate(self):
        return open_()

    @property
    def fk_constraint_option_reflection_ondelete_noaction(self):
        return open_()

    @property
    def fk_constraint_option_reflection_ondelete_restrict(self):
        # MariaDB's SHOW CREATE TABLE omits ON DELETE/UPDATE RESTRICT (the
        # default), so it reflects as no option, not "RESTRICT".
        return closed()

    @property
    def fk_constraint_option_reflection_onupdate_restrict(self):
        return closed()  # as above

    @property
    def reflects_pk_names(self):
        return closed()  # MySQL/MariaDB name every primary key "PRIMARY"

    @property
    def indexes_check_column_order(self):
        return open_()

    @property
    def indexes_with_expressions(self):
        return closed()  # MariaDB has no functional (expression) indexes

    @property
    def reflect_indexes_with_expressions(self):
        return closed()

    @property
    def cross_schema_fk_reflection(self):
        return self.schemas

    @property
    def implicit_default_schema(self):
        return closed()  # only PostgreSQL's "public" is implicit

    @property
    def column_collation_reflection(self):
        # The suite's test declares String() with no length, which MySQL
        # cannot create ("VARCHAR requires a length on dialect mysql").
        return closed()

    # ------------------------------------------------------------------ queries

    @property
    def ctes(self):
        return open_()  # WITH: MariaDB 10.2+

    @property
    def ctes_with_values(self):
        return open_()

    @property
    def ctes_with_update_delete(self):
        return closed()  # MariaDB has no WITH ... DELETE/UPDATE (syntax error 1064)

    @property
    def ctes_on_dml(self):
        return closed()  # no INSERT ... RETURNING inside a CTE

    @property
    def window_functions(self):
        return open_()

    @property
    def intersect(self):
        return open_()  # MariaDB 10.3+

    @property
    def except_(self):
        return open_()

    @property
    def tuple_in(self):
        return open_()

    @property
    def tuple_in_w_empty(self):
        return open_()

    @property
    def boolean_col_expressions(self):
        return open_()

    @property
    def nullsordering(self):
        return closed()  # no NULLS FIRST/LAST in MySQL/MariaDB

    @property
    def sql_expression_limit_offset(self):
        return closed()  # LIMIT/OFFSET take only literals or parameters

    @property
    def fetch_first(self):
        return _mariadb_at_least(10, 6)  # OFFSET ... FETCH FIRST: MariaDB 10.6+

    @property
    def fetch_ties(self):
        return _mariadb_at_least(10, 6)

    @property
    def fetch_no_order_by(self):
        return _mariadb_at_least(10, 6)

    @property
    def fetch_offset_with_options(self):
        return _mariadb_at_least(10, 6)

    @property
    def fetch_expression(self):
        return closed()  # FETCH FIRST takes no expression in MariaDB

    @property
    def fetch_percent(self):
        return closed()  # no FETCH ... PERCENT in MariaDB

    @property
    def update_from(self):
        return open_()  # UPDATE t1, t2 SET ...

    @property
    def delete_from(self):
        return open_()  # DELETE t1 FROM t1, t2 ...

    @property
    def mod_operator_as_percent_sign(self):
        return open_()

    @property
    def percent_schema_names(self):
        return open_()

    @property
    def regexp_match(self):
        return open_()

    @property
    def regexp_replace(self):
        return open_()

    @property
    def supports_bitwise_and(self):
        return open_()

    @property
    def supports_bitwise_or(self):
        return open_()

    @property
    def supports_bitwise_xor(self):
        return open_()

    @property
    def supports_bitwise_shift(self):
        return open_()

    @property
    def supports_bitwise_not(self):
        # MySQL's ~ works on unsigned 64-bit integers (~5 is
        # 18446744073709551610, not -6), so the suite's `~(a - 2) > 0`
        # matches nearly every row instead of only a = 0.
        return closed()

    @property
    def table_value_constructor(self):
        # MariaDB 10.11 has no column list on a derived table:
        # `(VALUES ...) AS t (id, name)` is a syntax error (1064).
        return closed()

    def get_order_by_collation(self, config):
        return "utf8mb4_bin"

    # -------------------------------------------------------------------- types

    @property
    def json_type(self):
        return open_()  # MariaDB 10.2.7+ (JSON is LONGTEXT + JSON_VALID)

    @property
    def json_index_supplementary_unicode_element(self):
        return open_()

    @property
    def legacy_unconditional_json_extract(self):
        return open_()

    @property
    def datetime_literals(self):
        return open_()

    @property
    def datetime_historic(self):
        return open_()  # DATETIME from year 1000 on

    @property
    def date_historic(self):
        return open_()

    @property
    def datetime_microseconds(self):
        # DateTime() renders DATETIME, which stores whole seconds (a
        # fraction needs mysql.DATETIME(fsp=6)).
        return closed()

    @property
    def time_microseconds(self):
        return closed()  # TIME, likewise

    @property
    def timestamp_microseconds(self):
        return closed()  # TIMESTAMP, likewise

    @property
    def datetime_timezone(self):
        return closed()  # no time zone in DATETIME

    @property
    def time_timezone(self):
        return closed()

    @property
    def precision_generic_float_type(self):
        # FLOAT is single precision: it keeps about 7 significant digits,
        # not the suite's 15-digit values.
        return closed()

    @property
    def float_or_double_precision_behaves_generically(self):
        # SQLAlchemy's MySQL DOUBLE/FLOAT need both precision and scale or
        # neither: the suite's Double(53) cannot be rendered.
        return closed()

    @property
    def precision_numerics_many_significant_digits(self):
        return open_()  # DECIMAL up to 65 digits

    @property
    def cast_precision_numerics_many_significant_digits(self):
        return open_()

    @property
    def precision_numerics_retains_significant_digits(self):
        return open_()  # DECIMAL values arrive as exact decimals

    @property
    def infinity_floats(self):
        return closed()  # MySQL/MariaDB store no infinity or NaN

    # ---------------------------------------------------------------- DB-API

    @property
    def dbapi_lastrowid(self):
        return open_()  # cursor.lastrowid: the gateway's last_insert_id

    @property
    def emulated_lastrowid(self):
        return open_()
