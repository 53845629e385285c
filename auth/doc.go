// Package auth checks passwords, TOTP codes and bearer secrets, and makes
// new ones: argon2id password hashes, TOTP enrollment URIs and prefixed
// random secrets stored only as their SHA-256.
package auth
