// Package media keeps the bytes of Telegram media, content-addressed: an object's name is the
// lowercase hex SHA-256 of its bytes, so storing the same photo from two channels, two
// exports or two ingest runs keeps one copy. The production store is a JetStream Object
// Store bucket (Bucket); Memory is an in-process stand-in for tests.
package media
