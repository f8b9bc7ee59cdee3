// Entry point: mounts the app.
import { mount } from "svelte";
import App from "./App.svelte";
import "./styles/base.css";
import "./styles/controls.css";
import "./styles/markdown.css";

mount(App, { target: document.getElementById("app")! });
