// Express 4 is installed under an alias so both majors are tested; it has the same types as 5 for our use.
declare module 'express4' {
  import express from 'express';
  export default express;
}
