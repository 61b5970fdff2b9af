import Database from 'better-sqlite3';
import { Router } from 'express';

const db = new Database('notes.db');
db.pragma('journal_mode = WAL');
db.exec(`
  CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL, created_at INTEGER);
  CREATE TABLE IF NOT EXISTS tags (note_id INTEGER, tag TEXT, UNIQUE (note_id, tag));
  INSERT INTO meta (key, value) VALUES ('schema', '3');
`);

const insertNote = db.prepare('INSERT INTO notes (body, created_at) VALUES (?, ?)');
const insertTag = db.prepare('INSERT OR IGNORE INTO tags (note_id, tag) VALUES (?, ?)');
const upsertDraft = db.prepare(
  'INSERT INTO drafts (user_id, body) VALUES (@userId, @body) ON CONFLICT (user_id) DO UPDATE SET body = excluded.body',
);
const selectNote = db.prepare('SELECT * FROM notes WHERE id = ?');

export const notes = Router();

notes.post('/notes', (req, res) => {
  const info = insertNote.run(req.body.body, Date.now()); // expect: idem/no-blind-insert
  for (const tag of req.body.tags ?? []) insertTag.run(info.lastInsertRowid, tag);
  res.status(201).json({ id: info.lastInsertRowid });
});

notes.put('/drafts', (req, res) => {
  upsertDraft.run({ userId: req.body.userId, body: req.body.body });
  res.sendStatus(204);
});

notes.get('/notes/:id', (req, res) => {
  const note = selectNote.get(req.params.id);
  if (note === undefined) return res.sendStatus(404);
  res.json(note);
});

const importNotes = db.transaction((rows: { body: string }[]) => {
  for (const row of rows) db.prepare('INSERT INTO notes (body, created_at) VALUES (?, ?)').run(row.body, Date.now()); // expect: idem/no-blind-insert
});

notes.post('/notes/import', (req, res) => {
  importNotes(req.body.rows);
  res.sendStatus(201);
});

notes.post('/notes/:id/copies', (req, res) => {
  db.exec(`INSERT INTO notes (body, created_at) SELECT body, created_at FROM notes WHERE id = ${Number(req.params.id)}`); // expect: idem/no-blind-insert
  res.sendStatus(201);
});
