// The page the server shows in place of one its user may not use: the
// layout's navigation lists only what they may use, and a way to sign out.

import { $, initPage, logOut } from './page.js';

initPage('No access');
$('no-access-logout').addEventListener('click', logOut);
