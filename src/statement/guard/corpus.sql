-- Ordinary statements that ORMs emit against MySQL/MariaDB, one per line
-- (issue 19 item 6). `T ` before a statement: it runs inside a transaction.
-- SQLAlchemy
SELECT DATABASE()
SELECT @@tx_isolation
SELECT @@transaction_isolation
SHOW VARIABLES LIKE 'sql_mode'
SHOW VARIABLES LIKE 'lower_case_table_names'
SELECT VERSION()
SHOW COLLATION WHERE `Charset` = 'utf8mb4' AND `Collation` = 'utf8mb4_bin'
SELECT CAST('test plain returns' AS CHAR(60)) AS anon_1
SELECT CAST('test unicode returns' AS CHAR(60)) AS anon_1
SHOW CREATE TABLE `users`
SHOW FULL TABLES FROM `app`
SHOW FULL COLUMNS FROM `users`
SELECT TABLE_NAME FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE'
SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?
CREATE TABLE users (id INTEGER NOT NULL AUTO_INCREMENT, name VARCHAR(50) NOT NULL, fullname VARCHAR(100), PRIMARY KEY (id))
CREATE TABLE addresses (id INTEGER NOT NULL AUTO_INCREMENT, user_id INTEGER NOT NULL, email_address VARCHAR(100) NOT NULL, PRIMARY KEY (id), FOREIGN KEY(user_id) REFERENCES users (id))
CREATE INDEX ix_users_name ON users (name)
DROP TABLE addresses
DROP TABLE users
T INSERT INTO users (name, fullname) VALUES (?, ?)
T INSERT INTO addresses (user_id, email_address) VALUES (?, ?), (?, ?)
T SELECT users.id, users.name, users.fullname FROM users WHERE users.name = ?
T SELECT users.id AS users_id, users.name AS users_name FROM users WHERE users.id = ? LIMIT ?
T SELECT users.id, users.name FROM users WHERE users.name IN (?, ?, ?) ORDER BY users.id
T SELECT count(*) AS count_1 FROM (SELECT users.id AS users_id FROM users) AS anon_1
T UPDATE users SET fullname=? WHERE users.id = ?
T DELETE FROM addresses WHERE addresses.id = ?
T SELECT users.id, users.name FROM users WHERE users.id = ? FOR UPDATE
T SELECT addresses.id, addresses.email_address FROM addresses JOIN users ON users.id = addresses.user_id WHERE users.name = ?
T SAVEPOINT sa_savepoint_1
T RELEASE SAVEPOINT sa_savepoint_1
T ROLLBACK TO SAVEPOINT sa_savepoint_1
T SELECT users.name, count(addresses.id) AS count_1 FROM users LEFT OUTER JOIN addresses ON users.id = addresses.user_id GROUP BY users.name HAVING count(addresses.id) > ?
T INSERT INTO users (name, fullname) VALUES (?, ?) ON DUPLICATE KEY UPDATE fullname = VALUES(fullname)
T SELECT users.id, users.name FROM users WHERE users.name LIKE concat('%%', ?, '%%')
T SELECT users.id FROM users WHERE EXISTS (SELECT * FROM addresses WHERE addresses.user_id = users.id)
SET NAMES utf8mb4
SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED
SET SESSION sql_mode = 'TRADITIONAL'
-- Django
SELECT @@SQL_AUTO_IS_NULL
SET SQL_AUTO_IS_NULL = 0
SELECT VERSION(), @@sql_mode, @@default_storage_engine, @@sql_auto_is_null, @@lower_case_table_names, CONVERT_TZ('2001-01-01 01:00:00', 'UTC', 'UTC') IS NOT NULL
SHOW FULL TABLES
SELECT engine FROM information_schema.tables WHERE table_name = ?
CREATE TABLE `django_migrations` (`id` bigint AUTO_INCREMENT NOT NULL PRIMARY KEY, `app` varchar(255) NOT NULL, `name` varchar(255) NOT NULL, `applied` datetime(6) NOT NULL)
SELECT `django_migrations`.`id`, `django_migrations`.`app`, `django_migrations`.`name`, `django_migrations`.`applied` FROM `django_migrations`
INSERT INTO `django_migrations` (`app`, `name`, `applied`) VALUES (?, ?, ?)
CREATE TABLE `auth_user` (`id` integer AUTO_INCREMENT NOT NULL PRIMARY KEY, `password` varchar(128) NOT NULL, `last_login` datetime(6) NULL, `is_superuser` bool NOT NULL, `username` varchar(150) NOT NULL UNIQUE, `email` varchar(254) NOT NULL)
ALTER TABLE `auth_user` ADD COLUMN `first_name` varchar(150) DEFAULT '' NOT NULL
ALTER TABLE `auth_user` ALTER COLUMN `first_name` DROP DEFAULT
ALTER TABLE `auth_user` MODIFY `email` varchar(254) NOT NULL
ALTER TABLE `auth_group_permissions` ADD CONSTRAINT `auth_group_permissio_permission_id_84c5c92e_fk_auth_perm` FOREIGN KEY (`permission_id`) REFERENCES `auth_permission` (`id`)
CREATE INDEX `auth_user_email_1c89df09` ON `auth_user` (`email`)
ALTER TABLE `auth_user` RENAME COLUMN `email` TO `email_address`
SELECT kc.`constraint_name`, kc.`column_name`, kc.`referenced_table_name`, kc.`referenced_column_name`, c.`constraint_type` FROM information_schema.key_column_usage AS kc, information_schema.table_constraints AS c WHERE kc.table_schema = DATABASE() AND c.table_schema = kc.table_schema AND c.constraint_name = kc.constraint_name AND c.constraint_type != 'CHECK' AND kc.table_name = ?
SELECT column_name, data_type, character_maximum_length, numeric_precision, numeric_scale, extra, column_default FROM information_schema.columns WHERE table_name = ? AND table_schema = DATABASE()
SHOW INDEX FROM `auth_user`
T SELECT `auth_user`.`id`, `auth_user`.`password`, `auth_user`.`username` FROM `auth_user` WHERE `auth_user`.`username` = ? LIMIT 21
T INSERT INTO `auth_user` (`password`, `last_login`, `is_superuser`, `username`, `email`) VALUES (?, NULL, ?, ?, ?) RETURNING `auth_user`.`id`
T UPDATE `auth_user` SET `last_login` = ? WHERE `auth_user`.`id` = ?
T DELETE FROM `auth_user` WHERE `auth_user`.`id` IN (?)
T SELECT (1) AS `a` FROM `auth_user` WHERE `auth_user`.`username` = ? LIMIT 1
T SELECT COUNT(*) AS `__count` FROM `auth_user`
T SAVEPOINT `s140234_x2`
T RELEASE SAVEPOINT `s140234_x2`
T ROLLBACK TO SAVEPOINT `s140234_x2`
T SELECT `auth_user`.`id` FROM `auth_user` WHERE `auth_user`.`id` = ? FOR UPDATE
T SELECT `auth_user`.`id` FROM `auth_user` ORDER BY `auth_user`.`id` ASC LIMIT 1 FOR UPDATE SKIP LOCKED
T SELECT DISTINCT `auth_user`.`username` FROM `auth_user` WHERE (`auth_user`.`is_superuser` AND NOT (`auth_user`.`email` = ''))
T INSERT INTO `django_session` (`session_key`, `session_data`, `expire_date`) VALUES (?, ?, ?)
T UPDATE `django_session` SET `session_data` = ?, `expire_date` = ? WHERE `django_session`.`session_key` = ?
T SELECT `django_content_type`.`id`, `django_content_type`.`app_label`, `django_content_type`.`model` FROM `django_content_type` WHERE (`django_content_type`.`app_label` = ? AND `django_content_type`.`model` = ?) LIMIT 21
SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ
-- Rails (mysql2 inlines literals)
SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci
SET @@SESSION.sql_mode = CONCAT(CONCAT(@@sql_mode, ',STRICT_ALL_TABLES'), ',NO_AUTO_VALUE_ON_ZERO'), @@SESSION.wait_timeout = 2147483
SELECT @@FOREIGN_KEY_CHECKS
SET FOREIGN_KEY_CHECKS = 0
SET FOREIGN_KEY_CHECKS = 1
SHOW FULL FIELDS FROM `schema_migrations`
CREATE TABLE `schema_migrations` (`version` varchar(255) NOT NULL PRIMARY KEY)
CREATE TABLE `ar_internal_metadata` (`key` varchar(255) NOT NULL PRIMARY KEY, `value` varchar(255), `created_at` datetime(6) NOT NULL, `updated_at` datetime(6) NOT NULL)
SELECT `schema_migrations`.`version` FROM `schema_migrations` ORDER BY `schema_migrations`.`version` ASC
INSERT INTO `schema_migrations` (`version`) VALUES ('20241204120000')
SELECT `ar_internal_metadata`.* FROM `ar_internal_metadata` WHERE `ar_internal_metadata`.`key` = 'environment' LIMIT 1
CREATE TABLE `posts` (`id` bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, `title` varchar(255), `body` text, `created_at` datetime(6) NOT NULL, `updated_at` datetime(6) NOT NULL)
ALTER TABLE `posts` ADD `author_id` bigint
CREATE INDEX `index_posts_on_author_id` ON `posts` (`author_id`)
ALTER TABLE `posts` ADD CONSTRAINT `fk_rails_0f4a1a2b3c` FOREIGN KEY (`author_id`) REFERENCES `authors` (`id`)
DROP TABLE `posts` CASCADE
SELECT table_name FROM information_schema.tables WHERE table_schema = database() AND table_name = 'posts' AND table_type = 'BASE TABLE'
SELECT fk.referenced_table_name AS 'to_table', fk.referenced_column_name AS 'primary_key', fk.column_name AS 'column', fk.constraint_name AS 'name', rc.update_rule AS 'on_update', rc.delete_rule AS 'on_delete' FROM information_schema.referential_constraints rc JOIN information_schema.key_column_usage fk USING (constraint_schema, constraint_name) WHERE fk.referenced_column_name IS NOT NULL AND fk.table_schema = database() AND fk.table_name = 'posts'
T INSERT INTO `posts` (`title`, `body`, `created_at`, `updated_at`) VALUES ('O\'Brien', 'it\'s', '2024-12-04 12:00:00.000000', '2024-12-04 12:00:00.000000')
T SELECT `posts`.* FROM `posts` WHERE `posts`.`title` = 'O\'Brien' LIMIT 1
T SELECT `posts`.* FROM `posts` WHERE `posts`.`id` = 1 LIMIT 1
T UPDATE `posts` SET `posts`.`title` = 'New title', `posts`.`updated_at` = '2024-12-04 12:00:01.000000' WHERE `posts`.`id` = 1
T DELETE FROM `posts` WHERE `posts`.`id` = 1
T SELECT COUNT(*) FROM `posts`
T SELECT 1 AS one FROM `posts` WHERE `posts`.`title` = BINARY 'x' LIMIT 1
T SAVEPOINT active_record_1
T RELEASE SAVEPOINT active_record_1
T ROLLBACK TO SAVEPOINT active_record_1
T SELECT `posts`.* FROM `posts` WHERE `posts`.`id` = 1 LIMIT 1 FOR UPDATE
T SELECT `posts`.* FROM `posts` ORDER BY `posts`.`id` DESC LIMIT 20 OFFSET 40
T SELECT `posts`.* FROM `posts` WHERE `posts`.`author_id` IN (1, 2, 3)
T SELECT `posts`.`id` FROM `posts` WHERE (title LIKE '%ruby%')
T INSERT INTO `posts` (`title`, `body`, `created_at`, `updated_at`) VALUES ('a', NULL, '2024-12-04 12:00:00', '2024-12-04 12:00:00') ON DUPLICATE KEY UPDATE `title`=VALUES(`title`)
T UPDATE `posts` SET `body` = 'x' WHERE `posts`.`author_id` = 3
T SELECT `posts`.* FROM `posts` INNER JOIN `authors` ON `authors`.`id` = `posts`.`author_id` WHERE `authors`.`name` = 'Ann'
T SELECT MAX(`posts`.`id`) FROM `posts`
T SELECT `posts`.`title`, COUNT(*) AS count_all FROM `posts` GROUP BY `posts`.`title`
-- Hibernate
select next_val as id_val from hibernate_sequence for update
update hibernate_sequence set next_val= ? where next_val=?
create table hibernate_sequence (next_val bigint) engine=InnoDB
insert into hibernate_sequence values ( 1 )
create table person (id bigint not null auto_increment, name varchar(255), version integer not null, primary key (id)) engine=InnoDB
create table person_address (person_id bigint not null, address_id bigint not null) engine=InnoDB
alter table person_address add constraint FKm7j0bnabh2yr0pe99il1d066u foreign key (address_id) references address (id)
alter table person add column age integer
drop table if exists person
create sequence person_seq start with 1 increment by 50
select next value for person_seq
select nextval(person_seq)
SELECT @@session.transaction_read_only
SELECT @@session.transaction_isolation
SET SESSION TRANSACTION READ WRITE
T insert into person (name, version) values (?, ?)
T select p1_0.id,p1_0.name,p1_0.version from person p1_0 where p1_0.id=?
T update person set name=?,version=? where id=? and version=?
T delete from person where id=? and version=?
T select p1_0.id,p1_0.name from person p1_0 where p1_0.name like ? escape '\\' order by p1_0.id limit ?,?
T select count(p1_0.id) from person p1_0
T select p1_0.id from person p1_0 where p1_0.id=? for update
T select p1_0.id from person p1_0 where p1_0.id=? lock in share mode
T select p1_0.id,a1_0.id from person p1_0 left join (person_address a1_1 join address a1_0 on a1_0.id=a1_1.address_id) on p1_0.id=a1_1.person_id where p1_0.id=?
T insert into person_address (person_id, address_id) values (?, ?)
T select p1_0.id from person p1_0 where p1_0.id in (?,?,?,?)
T select case when exists(select 1 from person p1_0 where p1_0.name=?) then 1 else 0 end
T select p1_0.name,count(*) from person p1_0 group by p1_0.name having count(*)>?
T select p1_0.id from person p1_0 where p1_0.name is null or p1_0.name=cast(? as char)
T select p1_0.id from person p1_0 order by p1_0.id desc limit ?
-- Prisma
SELECT `app`.`User`.`id`, `app`.`User`.`email`, `app`.`User`.`name` FROM `app`.`User` WHERE `app`.`User`.`email` = ? LIMIT ? OFFSET ?
INSERT INTO `app`.`User` (`email`,`name`) VALUES (?,?)
SELECT `app`.`User`.`id` FROM `app`.`User` WHERE (`app`.`User`.`id` = ? AND 1=1)
UPDATE `app`.`User` SET `name` = ? WHERE (`app`.`User`.`id` IN (?) AND (`app`.`User`.`id` = ? AND 1=1))
DELETE FROM `app`.`User` WHERE (`app`.`User`.`id` IN (?) AND (`app`.`User`.`id` = ? AND 1=1))
SELECT COUNT(*) AS `_count._all` FROM (SELECT `app`.`User`.`id` FROM `app`.`User` WHERE 1=1) AS `sub`
SELECT `app`.`Post`.`id`, `app`.`Post`.`title`, `app`.`Post`.`authorId` FROM `app`.`Post` WHERE `app`.`Post`.`authorId` IN (?,?)
SELECT `t1`.`id`, `t1`.`title` FROM `app`.`Post` AS `t1` WHERE (`t1`.`published` = ? AND `t1`.`title` LIKE ?) ORDER BY `t1`.`id` ASC
CREATE TABLE `User` (`id` INTEGER NOT NULL AUTO_INCREMENT, `email` VARCHAR(191) NOT NULL, `name` VARCHAR(191) NULL, UNIQUE INDEX `User_email_key`(`email`), PRIMARY KEY (`id`)) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci
CREATE TABLE `Post` (`id` INTEGER NOT NULL AUTO_INCREMENT, `createdAt` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), `title` VARCHAR(255) NOT NULL, `published` BOOLEAN NOT NULL DEFAULT false, `authorId` INTEGER NOT NULL, PRIMARY KEY (`id`)) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci
ALTER TABLE `Post` ADD CONSTRAINT `Post_authorId_fkey` FOREIGN KEY (`authorId`) REFERENCES `User`(`id`) ON DELETE RESTRICT ON UPDATE CASCADE
CREATE TABLE IF NOT EXISTS `_prisma_migrations` (id VARCHAR(36) PRIMARY KEY NOT NULL, checksum VARCHAR(64) NOT NULL, finished_at DATETIME(3), migration_name VARCHAR(255) NOT NULL, logs TEXT, rolled_back_at DATETIME(3), started_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), applied_steps_count INTEGER UNSIGNED NOT NULL DEFAULT 0) DEFAULT CHARACTER SET utf8mb4
SELECT `id`, `checksum`, `finished_at`, `migration_name`, `logs`, `rolled_back_at`, `started_at`, `applied_steps_count` FROM `_prisma_migrations` ORDER BY `started_at` ASC
INSERT INTO `_prisma_migrations` (id, checksum, started_at, finished_at, migration_name, applied_steps_count) VALUES (?, ?, now(3), now(3), ?, 0)
UPDATE `_prisma_migrations` SET finished_at = now(3), applied_steps_count = applied_steps_count + 1 WHERE id = ?
SELECT @@GLOBAL.version
SELECT table_name as table_name FROM information_schema.tables WHERE table_schema = ? AND table_type = 'BASE TABLE' ORDER BY Binary table_name
SELECT column_name column_name, data_type data_type, column_type full_data_type, character_maximum_length character_maximum_length, numeric_precision numeric_precision, numeric_scale numeric_scale, datetime_precision datetime_precision, column_default column_default, is_nullable is_nullable, extra extra, table_name table_name FROM information_schema.columns WHERE table_schema = ? ORDER BY ordinal_position
SELECT DISTINCT index_name AS index_name, non_unique AS non_unique, Binary column_name AS column_name, seq_in_index AS seq_in_index, Binary table_name AS table_name, sub_part AS partial, Binary collation AS column_order FROM INFORMATION_SCHEMA.STATISTICS WHERE table_schema = ? ORDER BY index_name, seq_in_index
SET TRANSACTION ISOLATION LEVEL SERIALIZABLE
T SELECT `app`.`User`.`id` FROM `app`.`User` WHERE `app`.`User`.`id` = ? FOR UPDATE
T INSERT INTO `app`.`Post` (`title`,`authorId`,`createdAt`,`published`) VALUES (?,?,?,?)
T UPDATE `app`.`Post` SET `published` = ? WHERE `app`.`Post`.`authorId` = ?
T SELECT `app`.`Post`.`id`, `app`.`Post`.`title` FROM `app`.`Post` WHERE `app`.`Post`.`id` = ? LIMIT ? OFFSET ?
T DELETE FROM `app`.`Post` WHERE `app`.`Post`.`authorId` = ?
T SAVEPOINT prisma_savepoint_1
T ROLLBACK TO SAVEPOINT prisma_savepoint_1
-- Drizzle
select `id`, `name`, `email` from `users` where `users`.`id` = ?
select `id`, `name`, `email` from `users` where (`users`.`name` = ? and `users`.`email` like ?) order by `users`.`id` desc limit ?
insert into `users` (`id`, `name`, `email`) values (default, ?, ?)
insert into `users` (`id`, `name`, `email`) values (default, ?, ?), (default, ?, ?)
insert into `users` (`id`, `name`) values (?, ?) on duplicate key update `name` = ?
update `users` set `name` = ? where `users`.`id` = ?
delete from `users` where `users`.`id` = ?
select count(*) from `users`
select `users`.`id`, `posts`.`title` from `users` left join `posts` on `users`.`id` = `posts`.`author_id` where `users`.`id` = ?
select `id`, `name` from `users` where `users`.`id` in (?, ?, ?)
select `id` from `users` where exists (select 1 from `posts` where `posts`.`author_id` = `users`.`id`)
select `users`.`id`, coalesce(json_arrayagg(json_array(`posts`.`id`, `posts`.`title`)), json_array()) as `posts` from `users` left join `posts` on `posts`.`author_id` = `users`.`id` group by `users`.`id`
CREATE TABLE `users` (`id` serial AUTO_INCREMENT NOT NULL, `name` text NOT NULL, `email` varchar(256), CONSTRAINT `users_id` PRIMARY KEY(`id`), CONSTRAINT `users_email_unique` UNIQUE(`email`))
CREATE TABLE IF NOT EXISTS `__drizzle_migrations` (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at bigint)
select id, hash, created_at from `__drizzle_migrations` order by created_at desc limit 1
insert into `__drizzle_migrations` (`hash`, `created_at`) values(?, ?)
ALTER TABLE `posts` ADD CONSTRAINT `posts_author_id_users_id_fk` FOREIGN KEY (`author_id`) REFERENCES `users`(`id`) ON DELETE no action ON UPDATE no action
CREATE INDEX `name_idx` ON `users` (`name`)
ALTER TABLE `users` DROP INDEX `users_email_unique`
ALTER TABLE `users` MODIFY COLUMN `name` varchar(255) NOT NULL
T select `id` from `users` where `users`.`id` = ? for update
T insert into `posts` (`id`, `title`, `author_id`) values (default, ?, ?)
T update `posts` set `title` = ? where `posts`.`id` = ?
T savepoint sp1
T rollback to savepoint sp1
T release savepoint sp1
T select `id`, `title` from `posts` where `posts`.`author_id` = ? limit ? offset ?
-- Common: session set-up, introspection, mysqldump-style
SET NAMES 'utf8mb4'
SET character_set_client = utf8mb4
SET time_zone = '+00:00'
SET SESSION time_zone = 'UTC'
SET SESSION max_execution_time = 5000
SET SESSION max_statement_time = 5
SET STATEMENT max_statement_time=5 FOR SELECT 1
SET @rails_var = 1
SELECT @@version_comment LIMIT 1
SELECT CONNECTION_ID()
SELECT LAST_INSERT_ID()
SELECT ROW_COUNT()
SELECT FOUND_ROWS()
SHOW TABLES
SHOW DATABASES
SHOW TABLE STATUS LIKE 'users'
SHOW WARNINGS
SHOW CREATE TABLE users
DESCRIBE users
EXPLAIN SELECT * FROM users WHERE id = 1
SELECT 1
SELECT NOW()
SELECT UTC_TIMESTAMP()
SELECT 5.
SELECT -1.5e3
CREATE TEMPORARY TABLE tmp_ids (id INT PRIMARY KEY)
DROP TEMPORARY TABLE IF EXISTS tmp_ids
TRUNCATE TABLE sessions
RENAME TABLE users_new TO users
CREATE TABLE t_copy LIKE users
ALTER TABLE users ENGINE=InnoDB
CREATE DATABASE IF NOT EXISTS app_test CHARACTER SET utf8mb4
/*!40101 SET NAMES utf8mb4 */
/*!40101 SET character_set_client = utf8 */
/*!40014 SET FOREIGN_KEY_CHECKS=0 */
/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */
