/** Where each rule is documented: its section of docs/eslint.md on GitHub (GitHub-style anchors). */
const DOCS = 'https://github.com/idem-js/idem/blob/main/docs/eslint.md';

/** The URL of a rule's section: the heading is the rule's name, so the anchor is the name itself. */
export function docsUrl(rule: string): string {
  return `${DOCS}#${rule}`;
}
